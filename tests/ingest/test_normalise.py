from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_html_to_text_drops_markup_scripts_and_styles() -> None:
    html = '<p>Arms <b>seized</b> &amp; held</p><script>alert("x")</script><style>p{}</style><p>Second</p>'
    assert html_to_text(html) == "Arms seized & held\n\nSecond"


def test_html_to_text_bounds_huge_input() -> None:
    text = html_to_text("<p>" + "word " * 2_000_000 + "</p>", max_chars=1000)
    assert len(text) <= 1001 and text.endswith("…")


def test_clean_text_removes_nul_controls_and_lone_surrogates() -> None:
    assert clean_text("a\x00b\ud800c\x1bd\r\ne") == "abcd\ne"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "HTTPS://Example.ORG:443/a/b?utm_source=rss&id=2&fbclid=x#frag",
            "https://example.org/a/b?id=2",
        ),
        ("http://example.org:80/x?b=2&a=1", "http://example.org/x?a=1&b=2"),
        ("http://example.org:8080/x", "http://example.org:8080/x"),
        ("javascript:alert(1)", None),
        ("file:///etc/passwd", None),
        ("/relative/path", None),
        ("http://exa mple.org/", None),
    ],
)
def test_canonical_url(url: str, expected: str | None) -> None:
    assert canonical_url(url) == expected


def test_safe_http_url_refuses_control_characters() -> None:
    assert safe_http_url("https://a.example/x\r\nSet-Cookie: y") is None
    assert safe_http_url("https://a.example/x") == "https://a.example/x"


def test_keys_are_stable_and_url_wins_across_feeds() -> None:
    h = content_hash("Title", "Summary")
    a = article_key("feed-a", url="https://x.example/story?utm_source=a", guid="g1", chash=h)
    b = article_key("feed-b", url="https://x.example/story?utm_medium=b", guid="other", chash=h)
    assert a == b
    assert article_key("feed-a", url=None, guid="g1", chash=h) != article_key(
        "feed-b", url=None, guid="g1", chash=h
    )
    assert content_hash("  Title!", "summary") == content_hash("title", "Summary.")


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("North Korea has shipped artillery shells to Russia, the ministry said on Tuesday.", "en"),
        ("La Corée du Nord a livré des obus à la Russie selon le ministère de la défense.", "fr"),
        (
            "Corea del Norte ha enviado proyectiles de artillería a Rusia, según el ministerio.",
            "es",
        ),
        ("КНДР поставила России артиллерийские снаряды, заявили в министерстве обороны.", "ru"),
        ("북한이 러시아에 포탄을 보냈다고 국방부가 밝혔다.", "ko"),
        ("朝鲜向俄罗斯运送了炮弹，国防部表示。", "zh"),
        ("أرسلت كوريا الشمالية قذائف مدفعية إلى روسيا بحسب وزارة الدفاع.", "ar"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_detect_language_falls_back_to_hint() -> None:
    assert detect_language("OK", hint="fr-FR") == "fr"
    assert detect_language("") == "und"


def test_split_sentences() -> None:
    assert split_sentences("One. Two! Three?\nFour") == ["One.", "Two!", "Three?", "Four"]


@given(st.text(max_size=2000))
def test_normalisers_never_raise_on_arbitrary_text(text: str) -> None:
    out = html_to_text(text)
    assert "\x00" not in out
    clean_text(text)
    canonical_url(text)
    detect_language(text)
    split_sentences(text)
    out.encode("utf-8")  # no lone surrogates survive
