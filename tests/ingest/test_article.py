"""The full-text cascade's decision (which pages to fetch) and main-text extraction (issue 9, item 5).

The fetching itself, hostile pages and politeness are in tests/hazards/test_hostile_pages.py; the
whole cycle in tests/test_fulltext_jobs.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from pagekit import SCRIPT_MARKS, SUMMIT_PARAGRAPHS, SUMMIT_TITLE, article_html

from pipeline.config import FullTextSettings
from pipeline.ingest.article import PAGE_MAX_CHARS, PageCandidate, extract_text, select_pages

THRESHOLD = 0.4


def _candidate(i: int, mode: str = "auto", body: str = "") -> PageCandidate:
    return PageCandidate(i, 1, "f", mode, f"https://news.example/{i}", f"T{i}", "S", body)  # type: ignore[arg-type]


def _triage(table: dict[int, tuple[float, Sequence[str]]], calls: list[list[int]]):
    def triage(items: Sequence[PageCandidate]) -> list[tuple[float, Sequence[str]]]:
        calls.append([c.article_id for c in items])
        return [table[c.article_id] for c in items]

    return triage


def test_the_cascade_fetches_always_items_then_the_uncertain_ones_closest_first() -> None:
    candidates = [
        _candidate(1),  # confident no: far below the band, no regime named
        _candidate(2),  # in the band
        _candidate(3),  # flagged already
        _candidate(4),  # below the band but names a UN sanctions regime
        _candidate(5, "always"),  # fetched whatever its score, and never asked about
        _candidate(6),  # in the band, closer to the threshold than 2
        _candidate(7, body="word " * 150),  # the feed gave the full text
    ]
    table = {
        1: (0.01, ()),
        2: (0.21, ()),
        3: (0.90, ("dprk",)),
        4: (0.01, ("dprk",)),
        6: (0.39, ()),
        7: (0.30, ()),
    }
    calls: list[list[int]] = []
    picked = select_pages(
        candidates,
        triage=_triage(table, calls),
        threshold=THRESHOLD,
        settings=FullTextSettings(band_low=0.5),
    )
    assert [(r.candidate.article_id, r.trigger, r.head_score) for r in picked] == [
        (5, "always", None),
        (6, "band", 0.39),
        (2, "band", 0.21),
        (4, "regime", 0.01),
    ]
    assert calls == [[1, 2, 3, 4, 6]]  # one model call, auto items only


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (FullTextSettings(band_low=0.5, regime_heads=False), [2]),
        (FullTextSettings(band_low=0.0, regime_heads=False), [2, 1]),
        (FullTextSettings(band_low=1.0, regime_heads=True), [1]),
        (FullTextSettings(band_low=0.5, full_body_words=0), []),
    ],
)
def test_the_band_and_the_regime_trigger_are_settings(
    settings: FullTextSettings, expected: list[int]
) -> None:
    table = {1: (0.05, ("iran",)), 2: (0.3, ())}
    picked = select_pages(
        [_candidate(1), _candidate(2)],
        triage=_triage(table, []),
        threshold=THRESHOLD,
        settings=settings,
    )
    assert [r.candidate.article_id for r in picked] == expected


def test_no_auto_candidates_means_no_model_call() -> None:
    calls: list[list[int]] = []
    picked = select_pages(
        [_candidate(1, "always")],
        triage=_triage({}, calls),
        threshold=THRESHOLD,
        settings=FullTextSettings(),
    )
    assert [r.trigger for r in picked] == ["always"] and calls == []


# -------------------------------------------------------------------------------------- extraction


def test_extraction_keeps_the_paragraphs_in_order_and_drops_the_page_around_them() -> None:
    text = extract_text(article_html(SUMMIT_TITLE, SUMMIT_PARAGRAPHS), "text/html; charset=utf-8")
    positions = [text.index(p) for p in SUMMIT_PARAGRAPHS]
    assert positions == sorted(positions)
    assert text.count("\n") >= len(SUMMIT_PARAGRAPHS) - 1  # paragraphs stay apart
    for noise in (*SCRIPT_MARKS, "Most read", "All rights reserved", "Weather"):
        assert noise not in text


@pytest.mark.parametrize(
    ("charset", "header"),
    [
        ("windows-1251", "text/html; charset=windows-1251"),
        ("utf-8", "text/html"),
        ("utf-8", "text/html; charset=no-such-charset"),
    ],
)
def test_extraction_decodes_with_the_charset_the_server_names(charset: str, header: str) -> None:
    paragraph = "Северная Корея отправила в Россию артиллерийские снаряды и ракеты. " * 4
    page = article_html("Заголовок", [paragraph, paragraph]).decode()
    page = page.replace("<meta charset='utf-8'>", "")  # the header is the only declaration
    text = extract_text(page.encode(charset), header)
    assert "артиллерийские снаряды" in text


def test_extraction_cleans_and_caps_the_text() -> None:
    paragraph = "Shells\x00 went\u200b by\x1b rail " + "and more words " * 400
    text = extract_text(article_html("T", [paragraph] * 40))
    assert len(text) <= PAGE_MAX_CHARS + 1
    assert "\x00" not in text and "\x1b" not in text
