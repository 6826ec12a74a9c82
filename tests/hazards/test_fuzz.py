"""Hazard: truncated XML, wrong declared encodings, invalid bytes, HTML, empty bodies... and whatever
else a property-based run (hypothesis) makes of real feeds, over the parser and the normaliser.

Pass criterion: never an exception other than :class:`FeedParseError` (a feed error), and every
entry that comes out is clean: no control characters or lone surrogates in its text, http(s) links
only, a stable 32-hex key, a sane language code and date. The normaliser's functions keep their
contracts on any text (idempotent where they should be).
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import NOW, SAMPLE_FEEDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import FeedParseError
from pipeline.ingest.normalise import (
    article_key,
    canonical_url,
    clean_text,
    content_hash,
    detect_language,
    html_to_text,
    safe_http_url,
    split_sentences,
)
from pipeline.ingest.parse import MAX_SUMMARY, MAX_TITLE, ParsedFeed, parse_feed

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
SEEDS = [
    (FIXTURES / "rss2_basic.xml").read_bytes(),
    (FIXTURES / "atom_basic.atom").read_bytes(),
    (FIXTURES / "rdf_rss1.xml").read_bytes(),
    (FIXTURES / "hostile_fields.xml").read_bytes(),
    (SAMPLE_FEEDS / "asia-desk.atom").read_bytes(),
]
# Pieces that have broken feed parsers: character references XML forbids, markup openers, entity
# declarations, encodings' byte-order marks, invalid UTF-8, controls.
NASTY = [
    b"&#0;",
    b"&#xD800;",
    b"&#55296;",
    b"&#99999999999999999999;",
    b"&#x110000;",
    b"&#xFFFE;",
    b"&amp;",
    b"&bogus;",
    b"&#",
    b"<!ENTITY x 'y'>",
    b"<!DOCTYPE rss SYSTEM 'http://127.0.0.1:1/x.dtd'>",
    b"<![CDATA[",
    b"]]>",
    b"<script>alert(1)</script>",
    b"<a href='javascript:alert(1)'>x</a>",
    b"\x00",
    b"\x1b[2J",
    b"\xed\xa0\x80",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"\xc3\x28",
    b'<?xml version="1.0" encoding="utf-16"?>',
    b'<?xml version="1.0" encoding="bogus-enc"?>',
    b"</item>",
    b"<item>",
    b"<entry>",
    b"<title>",
    b"</rss>",
    b"\r\n",
    "\u2028\u0085".encode(),
]
CONTENT_TYPES = [
    None,
    "application/rss+xml",
    "application/atom+xml; charset=iso-8859-1",
    "text/xml",
    "text/xml; charset=utf-16",
    "text/html; charset=utf-8",
    "application/octet-stream",
]
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_LANG = re.compile(r"[a-z]{2,3}|und")

pytestmark = pytest.mark.timeout(120)


def _check(parsed: ParsedFeed) -> None:
    for e in parsed.entries:
        for text in (e.title, e.summary, e.body, e.guid or ""):
            assert not _FORBIDDEN.search(text), repr(text[:80])
            text.encode("utf-8")
        assert len(e.title) <= MAX_TITLE + 1 and len(e.summary) <= MAX_SUMMARY + 1
        assert e.url is None or (
            e.url.startswith(("http://", "https://")) and not any(c.isspace() for c in e.url)
        )
        assert _HEX32.fullmatch(e.key) and _HEX32.fullmatch(e.content_hash)
        assert _LANG.fullmatch(e.lang), e.lang
        assert e.published_at is None or (
            e.published_at.tzinfo is not None and e.published_at <= NOW + timedelta(days=1)
        )
    for problem in parsed.problems:
        assert not _FORBIDDEN.search(problem)


def _parse(data: bytes, content_type: str | None) -> None:
    try:
        parsed = parse_feed(
            data,
            feed_id="fuzz",
            now=NOW,
            content_type=content_type,
            base_url="https://f.example/rss",
        )
    except FeedParseError:
        return
    _check(parsed)


_EDIT = st.tuples(
    st.sampled_from(["insert", "replace", "delete", "truncate"]),
    st.floats(min_value=0, max_value=1),
    st.one_of(st.sampled_from(NASTY), st.binary(min_size=1, max_size=16)),
)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(_EDIT, min_size=1, max_size=6),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def test_mutated_real_feeds_parse_cleanly_or_fail_as_feed_errors(
    seed: bytes, edits: list[tuple[str, float, bytes]], content_type: str | None
) -> None:
    data = seed
    for op, where, piece in edits:
        at = int(where * len(data))
        if op == "insert":
            data = data[:at] + piece + data[at:]
        elif op == "replace":
            data = data[:at] + piece + data[at + len(piece) :]
        elif op == "delete":
            data = data[:at] + data[at + len(piece) :]
        else:
            data = data[:at]
    _parse(data, content_type)


_ANY_TEXT = st.text(
    alphabet=st.characters(codec=None, categories=None, exclude_characters=""), max_size=120
)


def _xml_text(text: str, as_refs: bool) -> str:
    """Escape for XML; with ``as_refs`` every non-ASCII character (surrogates included) becomes a
    numeric character reference, which is how hostile feeds smuggle what raw bytes cannot hold."""
    out = []
    for ch in text:
        if ch in "<>&":
            out.append({"<": "&lt;", ">": "&gt;", "&": "&amp;"}[ch])
        elif as_refs and (ord(ch) > 126 or ord(ch) < 32):
            out.append(f"&#x{ord(ch):X};")
        else:
            out.append(ch)
    return "".join(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(
        st.fixed_dictionaries(
            {
                "title": _ANY_TEXT,
                "description": _ANY_TEXT,
                "link": st.one_of(
                    _ANY_TEXT,
                    st.sampled_from(
                        [
                            "https://ok.example/a?utm_source=x#frag",
                            "javascript:alert(1)",
                            " HTTPS://OK.EXAMPLE:443/b ",
                            "//evil.example/x",
                            "#top",
                            "data:text/html,x",
                        ]
                    ),
                ),
                "guid": _ANY_TEXT,
                "pubDate": st.sampled_from(
                    [
                        "",
                        "Tue, 27 Feb 2024 08:10:00 GMT",
                        "Fri, 01 Jan 2099 00:00:00 GMT",
                        "yesterday",
                        "0",
                    ]
                ),
            }
        ),
        min_size=1,
        max_size=4,
    ),
    language=_ANY_TEXT,
    as_refs=st.booleans(),
    encoding=st.sampled_from(["utf-8", "utf-16", "iso-8859-1", "windows-1252"]),
    atom=st.booleans(),
)
def test_generated_feeds_with_any_text_come_out_clean(
    items: list[dict[str, str]], language: str, as_refs: bool, encoding: str, atom: bool
) -> None:
    esc = lambda t: _xml_text(t, as_refs)  # noqa: E731
    if atom:
        body = "".join(
            f"<entry><title type='html'>{esc(i['title'])}</title><link href='{esc(i['link'])}'/>"
            f"<id>{esc(i['guid'])}</id><summary type='text'>{esc(i['description'])}</summary>"
            f"<updated>{esc(i['pubDate'])}</updated></entry>"
            for i in items
        )
        doc = (
            f'<?xml version="1.0" encoding="{encoding}"?><feed xmlns="http://www.w3.org/2005/Atom" '
            f"xml:lang='{esc(language)}'><title>g</title>{body}</feed>"
        )
    else:
        body = "".join(
            f"<item><title>{esc(i['title'])}</title><link>{esc(i['link'])}</link>"
            f"<guid>{esc(i['guid'])}</guid><description>{esc(i['description'])}</description>"
            f"<pubDate>{esc(i['pubDate'])}</pubDate></item>"
            for i in items
        )
        doc = (
            f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>g</title>'
            f"<language>{esc(language)}</language>{body}</channel></rss>"
        )
    codec = encoding if encoding != "utf-16" else "utf-16"
    data = doc.encode(
        codec, errors="surrogatepass" if codec.startswith("utf") else "xmlcharrefreplace"
    )
    _parse(data, None)


# ------------------------------------------------------------------------------------ normaliser

_TEXTISH = st.one_of(
    _ANY_TEXT,
    st.text(alphabet=string.printable + "\x00\x0b\x1b\u2028\u0085\ufeff\ud800é中", max_size=300),
)


@settings(max_examples=300, deadline=None)
@given(text=_TEXTISH, limit=st.one_of(st.none(), st.integers(min_value=1, max_value=200)))
def test_clean_text_is_clean_bounded_and_idempotent(text: str, limit: int | None) -> None:
    cleaned = clean_text(text, max_chars=limit)
    assert not _FORBIDDEN.search(cleaned)
    cleaned.encode("utf-8")
    if limit is not None:
        assert len(cleaned) <= limit + 1
    assert clean_text(cleaned) == cleaned
    assert cleaned == cleaned.strip()


@settings(max_examples=300, deadline=None)
@given(text=_TEXTISH, hidden=st.text(alphabet=string.ascii_letters, min_size=8, max_size=20))
def test_html_to_text_drops_scripts_and_styles_and_stays_clean(text: str, hidden: str) -> None:
    out = html_to_text(text)
    assert not _FORBIDDEN.search(out)
    for tag in ("script", "style", "noscript", "template", "iframe"):
        wrapped = html_to_text(f"<p>before</p><{tag}>{hidden}</{tag}><p>after</p>")
        assert hidden not in wrapped and "before" in wrapped and "after" in wrapped


_URLISH = st.one_of(
    _TEXTISH,
    st.builds(
        lambda scheme, host, path, query, frag: f"{scheme}://{host}{path}?{query}#{frag}",
        st.sampled_from(["http", "https", "HTTP", "ftp", "javascript", "file"]),
        st.sampled_from(
            ["ok.example", "OK.EXAMPLE.", "ok.example:443", "ok.example:80", "[::1]", "a@b", ""]
        ),
        st.text(alphabet=string.ascii_letters + "/%.-_~", max_size=20),
        st.sampled_from(["", "utm_source=x&b=2&a=1", "a=%ZZ&a=1", "fbclid=1", "x=y z", "q=%00"]),
        st.text(alphabet=string.ascii_letters, max_size=5),
    ),
)


@settings(max_examples=400, deadline=None)
@given(url=_URLISH)
def test_urls_are_http_only_canonical_and_idempotent(url: str) -> None:
    safe = safe_http_url(url)
    assert safe is None or safe.lower().startswith(("http://", "https://"))
    canonical = canonical_url(url)
    if canonical is None:
        return
    assert canonical.startswith(("http://", "https://"))
    assert "#" not in canonical and "utm_" not in canonical and "fbclid" not in canonical
    assert not _FORBIDDEN.search(canonical) and not any(c.isspace() for c in canonical)
    assert canonical_url(canonical) == canonical


@settings(max_examples=200, deadline=None)
@given(
    feed=st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8),
    url=st.one_of(st.none(), _URLISH),
    guid=st.one_of(st.none(), _TEXTISH),
    title=_TEXTISH,
    summary=_TEXTISH,
    hint=st.one_of(st.none(), _TEXTISH),
)
def test_keys_hashes_and_languages_are_well_formed(
    feed: str, url: str | None, guid: str | None, title: str, summary: str, hint: str | None
) -> None:
    chash = content_hash(title, summary)
    key = article_key(feed, url=url, guid=guid, chash=chash)
    assert _HEX32.fullmatch(chash) and _HEX32.fullmatch(key)
    assert article_key(feed, url=url, guid=guid, chash=chash) == key
    assert _LANG.fullmatch(detect_language(f"{title} {summary}", hint=hint))
    for sentence in split_sentences(f"{title}. {summary}"):
        assert sentence == sentence.strip() and sentence
