"""Shared helpers for the hardening tests (issue 5), imported as ``from hazardkit import ...``.

Fixtures strategy, on top of ``tests/conftest.py`` (reuse those first; the fixtures named below live
in ``tests/hazards/conftest.py``):

* **The whole pipeline as a subprocess.** :func:`run_cli` runs ``python -m pipeline.cli --config DIR
  run-once --json`` with a clean environment (no ``SANCTIONS_WATCH_*`` leaking in from the caller),
  optionally with ``SANCTIONS_WATCH_CRASH_AT`` set to one of :data:`pipeline.faults.POINTS`. A
  crashed run exits with 70 (``os._exit`` in :func:`pipeline.faults.checkpoint`).
* **Feeds you write.** ``feed_dir`` is an empty folder served over loopback by ``feed_dir_server``
  (:func:`pipeline.devtools.feedserver.serve_directory`, real ETag/304); :func:`rss` builds a small RSS 2.0
  document from item dicts, and :func:`sample_items` gives the bundled sample stories (by title),
  some of which the shipped model flags and some it does not (see :data:`FLAGGED` / :data:`BENIGN`).
* **Counting mail.** :func:`mails` parses what a :class:`~pipeline.devtools.mailsink.MailSink` received;
  :func:`message_ids_to` counts Message-IDs per recipient (operators' notice mails are separate).
* **Bypassing the classifier.** :func:`flag_all` records a flagged classification for every
  article that has none, so alert-side hazards do not depend on the model's judgement.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from helpers import NOW, ROOT, SAMPLE_FEEDS
from sqlalchemy import select

from pipeline.ingest.normalise import article_key, content_hash
from pipeline.ingest.parse import Entry, parse_feed
from pipeline.store.schema import Article, Classification

REPO = ROOT
RECIPIENT = "compliance@example.org"
OPERATOR = "ops@example.org"

# Titles of bundled sample stories: the shipped model flags the first group and not the second
# (tests/test_jobs.py and the model card rely on the same judgements).
FLAGGED = {
    "origin": "North Korea suspected of sending artillery shells and missiles to Russia",
    "libya": "EU mission inspects cargo ship suspected of carrying armoured vehicles to eastern Libya",
    "tanker": "Tanker went dark off Nampo before meeting another ship at sea",
    "darfur": "Experts trace weapons reaching Darfur's RSF through neighbouring Chad",
    "haiti": "Rifles hidden in shipping containers seized at Port-au-Prince",
}
BENIGN = {
    "cyprus": "Security Council adopts resolution renewing peacekeeping mandate in Cyprus",
    "football": "Champions League: late goal sends holders into quarter-finals",
    "tanks": "Poland signs second contract for South Korean K2 tanks",
}


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any SANCTIONS_WATCH_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANCTIONS_WATCH_")}
    env.update(extra)
    return env


def run_cli(
    config_dir: Path,
    *args: str,
    crash_at: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``sanctions-watch --config DIR run-once --json`` (or ``args``) in a subprocess."""
    extra = dict(env or {})
    if crash_at is not None:
        extra["SANCTIONS_WATCH_CRASH_AT"] = crash_at
    command = [sys.executable, "-m", "pipeline.cli", "--config", str(config_dir)]
    command += list(args) if args else ["run-once", "--json"]
    return subprocess.run(
        command,
        cwd=REPO,
        env=clean_env(**extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_cli(
    config_dir: Path, *args: str, crash_at: str | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Like :func:`run_cli` but returns at once (finish with :func:`finish_cli`): several
    independent pipelines can then run side by side."""
    extra = dict(env or {})
    if crash_at is not None:
        extra["SANCTIONS_WATCH_CRASH_AT"] = crash_at
    command = [sys.executable, "-m", "pipeline.cli", "--config", str(config_dir)]
    command += list(args) if args else ["run-once", "--json"]
    return subprocess.Popen(
        command,
        cwd=REPO,
        env=clean_env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_cli(
    proc: subprocess.Popen[str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# ------------------------------------------------------------------------------------------ feeds


def sample_items() -> dict[str, dict[str, str]]:
    """The bundled sample stories by short name (FLAGGED and BENIGN keys): title and summary."""
    out: dict[str, dict[str, str]] = {}
    wanted = {**FLAGGED, **BENIGN}
    for path in sorted(SAMPLE_FEEDS.iterdir()):
        for e in parse_feed(path.read_bytes(), feed_id="sample", now=NOW).entries:
            for name, title in wanted.items():
                if e.title.startswith(title):
                    out[name] = {"title": e.title, "summary": e.summary}
    assert set(out) == set(wanted), sorted(set(wanted) - set(out))
    return out


def rss(items: Sequence[dict[str, Any]], *, title: str = "Hazard feed", extra: str = "") -> bytes:
    """A small RSS 2.0 document. Item keys: title, link, guid, description, pubDate (escaped),
    and ``raw`` (inserted verbatim inside the item)."""
    parts = []
    for item in items:
        fields = []
        for key in ("title", "link", "guid", "description", "pubDate"):
            if item.get(key) is not None:
                fields.append(f"<{key}>{escape(str(item[key]))}</{key}>")
        fields.append(item.get("raw", ""))
        parts.append("<item>" + "".join(fields) + "</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example/</link>"
        f"<description>hazards</description>{extra}{''.join(parts)}</channel></rss>\n"
    ).encode()


def write_feed(directory: Path, name: str, content: bytes) -> None:
    """Write (or replace, atomically) a served file; the server's ETag is a hash of the bytes."""
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(content)
    tmp.replace(directory / name)


# ------------------------------------------------------------------------------------------- mail


def mails(raw: Sequence[bytes]) -> list[EmailMessage]:
    return [email.message_from_bytes(m, policy=policy.default) for m in raw]  # type: ignore[misc]


def message_ids_to(raw: Sequence[bytes], recipient: str = RECIPIENT) -> Counter[str]:
    """How many copies of each Message-ID ``recipient`` received."""
    return Counter(str(m["Message-ID"]) for m in mails(raw) if recipient in str(m["To"]))


# ------------------------------------------------------------------------------------- database


def entry(feed_id: str, key: str, **fields: Any) -> Entry:
    """A normalised entry as the parser makes them, for tests that write rows directly."""
    title = fields.pop("title", f"Consignment {key} of artillery shells seized")
    summary = fields.pop("summary", f"Summary of consignment {key}.")
    url = fields.pop("url", f"https://x.example/{key}")
    chash = content_hash(title, summary)
    values: dict[str, Any] = {
        "feed_id": feed_id,
        "key": article_key(feed_id, url=url, guid=None, chash=chash),
        "guid": None,
        "url": url,
        "title": title,
        "summary": summary,
        "body": "",
        "lang": "en",
        "published_at": None,
        "content_hash": chash,
    }
    values.update(fields)
    return Entry(**values)


def flag_all(
    sessions: Any, *, now: datetime = NOW, regimes: Sequence[str] = ("dprk",)
) -> list[int]:
    """Record a flagged classification (model ``hazard-test``) for every article without one."""
    with sessions.begin() as s:
        done = set(s.scalars(select(Classification.article_id)))
        ids = [a.id for a in s.scalars(select(Article).order_by(Article.id)) if a.id not in done]
        for article_id in ids:
            revision = s.get(Article, article_id).revision
            s.add(
                Classification(
                    article_id=article_id,
                    revision=revision,
                    model_version="hazard-test",
                    score=0.97,
                    threshold=0.5,
                    flagged=True,
                    regimes=list(regimes),
                    evidence={"sentences": [], "terms": [], "regimes": list(regimes)},
                    classified_at=now,
                )
            )
    return ids
