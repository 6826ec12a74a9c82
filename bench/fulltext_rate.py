"""How many article pages the ``auto`` full-text cascade fetches per 1,000 items, and what it buys.

    .venv/bin/python bench/fulltext_rate.py [--model-dir models] [--json]

Two measurements, both with the active model of ``--model-dir`` and the default ``full_text``
settings (``config/settings.yaml``'s section, :class:`pipeline.config.FullTextSettings`):

1. **The sample feeds, end to end.** ``data/sample_feeds`` are copied to a temporary folder with their
   item links pointing at a loopback server that also serves a stand-in page for every item (its
   title and summary as HTML: the sample feeds ship no article pages). ``ingest`` and ``classify``
   run as in production (robots.txt, politeness and the byte cap included); the ``page_fetches``
   table says which pages were requested and why.
2. **Larger labelled sets, without the network** (read-only): the everyday-news slices and the
   long-article slices of the frozen test split and the independent hold-out, each item presented
   summary-only (title and summary). The cascade's own selection (:func:`select_pages`) decides which
   pages it would fetch; a fetched item is scored again with its body, as ``classify`` does. On the
   long-article slices it also counts the positives flagged from the head alone, through the cascade,
   and with every page fetched (``always``).

"Per 1,000" is pages selected for fetching per 1,000 items classified.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.classify.model import Doc, TextModel  # noqa: E402
from pipeline.classify.registry import load_active  # noqa: E402
from pipeline.config import FullTextSettings, load_config  # noqa: E402
from pipeline.devtools.feedserver import serve_directory  # noqa: E402
from pipeline.ingest.article import PageCandidate, select_pages  # noqa: E402
from pipeline.ingest.parse import parse_feed  # noqa: E402
from pipeline.jobs import Runtime, classify, ingest  # noqa: E402
from pipeline.knowledge.regimes import RegimeBook, load_regimes  # noqa: E402
from pipeline.store.schema import PageFetch  # noqa: E402

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SAMPLE_HOST = "http://127.0.0.1:8765"
SETS = {
    "everyday news (frozen test)": "data/test/frozen_everyday.jsonl",
    "everyday news (hold-out)": "data/holdout/everyday.jsonl",
    "long articles (frozen test)": "data/test/frozen_articles.jsonl",
    "long articles (hold-out)": "data/holdout/articles.jsonl",
    "short items (frozen test)": "data/test/frozen.jsonl",
    "short items (independent hold-out)": "data/holdout/independent.jsonl",
}


def _per_1000(n: int, total: int) -> float:
    return round(1000 * n / total, 1) if total else 0.0


# ------------------------------------------------------------------------------ 1. sample feeds


def _stage_sample_site(folder: Path, base: str) -> int:
    """Sample feeds with links on ``base``, and a stand-in page per item; returns the item count."""
    link = re.compile(re.escape(SAMPLE_HOST) + r"/([A-Za-z0-9_./-]+)")
    items = 0
    for source in sorted((ROOT / "data" / "sample_feeds").iterdir()):
        text = link.sub(lambda m: f"{base}/{m.group(1).strip('/')}.html", source.read_text())
        (folder / source.name).write_text(text, encoding="utf-8")
        for e in parse_feed(text.encode(), feed_id="sample", now=NOW).entries:
            if not e.url or not e.url.startswith(base):
                continue
            items += 1
            page = folder / e.url.removeprefix(base + "/").split("?")[0]
            page.parent.mkdir(parents=True, exist_ok=True)
            paragraphs = "".join(f"<p>{escape(p)}</p>" for p in (e.summary, e.body) if p)
            page.write_text(
                f"<html><head><title>{escape(e.title)}</title></head><body><article>"
                f"<h1>{escape(e.title)}</h1>{paragraphs}</article></body></html>",
                encoding="utf-8",
            )
    return items


def sample_feeds(model_dir: Path, settings: FullTextSettings) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        with serve_directory(site) as server:
            _stage_sample_site(site, server.url)
            cdir = Path(tmp) / "config"
            cdir.mkdir()
            shutil.copy(ROOT / "config" / "regimes.yaml", cdir / "regimes.yaml")
            feeds = yaml.safe_load((ROOT / "config" / "feeds.sample.yaml").read_text())
            for feed in feeds["feeds"]:
                feed["url"] = feed["url"].replace(SAMPLE_HOST, server.url)
            (cdir / "feeds.yaml").write_text(yaml.safe_dump(feeds))
            settings = {
                "database_url": f"sqlite:///{tmp}/bench.db",
                "base_dir": tmp,
                "feeds_file": "feeds.yaml",
                "model_dir": str(model_dir),
                "designations_path": None,
                "fetch": {"allow_hosts": ["127.0.0.1"]},
                # Our own loopback server: no need to wait between requests.
                "full_text": {
                    "min_delay": 0,
                    "band_low": settings.band_low,
                    "regime_heads": settings.regime_heads,
                },
            }
            (cdir / "settings.yaml").write_text(yaml.safe_dump(settings))
            config = load_config(cdir, environ={})
            with Runtime.open(config) as rt:
                ingest(rt, now=NOW, run_id="bench")
                report = classify(rt, now=NOW)
                with rt.sessions() as s:
                    rows = list(s.query(PageFetch))
                model_version, threshold = rt.model.version, rt.model.threshold
    requested = [r for r in rows if r.status != "skipped" and r.reason not in ("robots",)]
    return {
        "model": model_version,
        "threshold": threshold,
        "items": report.classified,
        "selected": len(rows),
        "by_trigger": dict(Counter(r.trigger for r in rows)),
        "outcomes": dict(
            Counter(r.status if r.status == "ok" else f"{r.status}:{r.reason}" for r in rows)
        ),
        "pages_per_1000": _per_1000(len(requested), report.classified),
    }


# ----------------------------------------------------------------------------- 2. labelled sets


def _candidates(items: Sequence[dict[str, Any]]) -> list[PageCandidate]:
    return [
        PageCandidate(
            i, 1, "bench", "auto", f"https://news.example/{i}", x["title"], x["summary"], ""
        )
        for i, x in enumerate(items)
    ]


def labelled_set(
    model: TextModel, book: RegimeBook, items: list[dict[str, Any]], settings: FullTextSettings
) -> dict[str, Any]:
    candidates = _candidates(items)

    def triage(cs: Sequence[PageCandidate]) -> list[tuple[float, Sequence[str]]]:
        docs = [Doc.of(c.title, c.summary, c.body) for c in cs]
        return [
            (s.score, s.evidence.regimes)
            for s in model.score_docs(docs, regimes=book, explain=False)
        ]

    head = [s for s, _ in triage(candidates)]
    picked = select_pages(candidates, triage=triage, threshold=model.threshold, settings=settings)
    chosen = {r.candidate.article_id: r.trigger for r in picked}
    full = model.predict_docs([Doc.of(x["title"], x["summary"], x.get("body", "")) for x in items])
    cascade = [full[i] if i in chosen else head[i] for i in range(len(items))]
    positives = [i for i, x in enumerate(items) if x.get("label") == 1]
    negatives = [i for i, x in enumerate(items) if x.get("label") == 0]
    flagged = {
        "head only": [s >= model.threshold for s in head],
        "auto (cascade)": [s >= model.threshold for s in cascade],
        "always (every page)": [s >= model.threshold for s in full],
    }
    return {
        "items": len(items),
        "with_body": sum(bool(x.get("body")) for x in items),
        "selected": len(chosen),
        "band": sum(t == "band" for t in chosen.values()),
        "regime": sum(t == "regime" for t in chosen.values()),
        "pages_per_1000": _per_1000(len(chosen), len(items)),
        "positives": len(positives),
        "flagged_positives": {k: sum(v[i] for i in positives) for k, v in flagged.items()},
        "flagged_negatives": {k: sum(v[i] for i in negatives) for k, v in flagged.items()},
    }


def _load(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--band-low", type=float, help="override full_text.band_low")
    parser.add_argument(
        "--regime-heads", choices=("on", "off"), help="override full_text.regime_heads"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_config(ROOT / "config", environ={}).full_text
    if args.band_low is not None:
        settings = dataclasses.replace(settings, band_low=args.band_low)
    if args.regime_heads is not None:
        settings = dataclasses.replace(settings, regime_heads=args.regime_heads == "on")
    model = load_active(args.model_dir)
    book = load_regimes(ROOT / "config" / "regimes.yaml")
    results: dict[str, Any] = {
        "settings": settings.__repr__(),
        "sample_feeds": sample_feeds(args.model_dir, settings),
    }
    for name, rel in SETS.items():
        if (ROOT / rel).exists():
            results[name] = labelled_set(model, book, _load(ROOT / rel), settings)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0
    sample = results["sample_feeds"]
    print(f"model {sample['model']} (threshold {sample['threshold']:.4f}); {settings}")
    print()
    print(
        "| items | n | pages per 1,000 | band | regime | positives flagged: head / auto / always | negatives flagged: head / auto / always |"
    )
    print("|---|---:|---:|---:|---:|---|---|")
    print(
        f"| sample feeds, end to end | {sample['items']} | {sample['pages_per_1000']} | "
        f"{sample['by_trigger'].get('band', 0)} | {sample['by_trigger'].get('regime', 0)} | – | – |"
    )
    for name in SETS:
        r = results.get(name)
        if r is None:
            continue
        fp, fn = r["flagged_positives"], r["flagged_negatives"]
        print(
            f"| {name} | {r['items']} | {r['pages_per_1000']} | {r['band']} | {r['regime']} | "
            f"{' / '.join(str(v) for v in fp.values())} of {r['positives']} | "
            f"{' / '.join(str(v) for v in fn.values())} of {r['items'] - r['positives']} |"
        )
    print()
    print(f"sample-feed page outcomes: {sample['outcomes']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
