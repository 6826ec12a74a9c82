"""Hazard: hostile article pages (issue 9, item 5). The page fetcher goes through the feeds' network
guard and is polite; whatever a page does, it is recorded on its item and the others go on.

Every test runs :func:`pipeline.ingest.article.fetch_pages` against a real loopback server
(tests/pagekit.py) whose side of the conversation is what the assertions read: which paths it was
asked for, and when each request arrived and was answered.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import pytest
from pagekit import (
    SCRIPT_MARKS,
    SUMMIT_PARAGRAPHS,
    SUMMIT_TITLE,
    PageServer,
    article_html,
    page_server,
)

from pipeline.config import FetchPolicy, FullTextSettings
from pipeline.ingest.article import PageCandidate, PageOutcome, PageRequest, fetch_pages

POLICY = FetchPolicy(
    allow_hosts=frozenset({"127.0.0.1"}), total_deadline=1.5, read_timeout=1.0, connect_timeout=1.0
)
SETTINGS = FullTextSettings(min_delay=0.0, max_bytes=256 * 1024)
PAGE = article_html(SUMMIT_TITLE, SUMMIT_PARAGRAPHS)


@pytest.fixture
def server() -> Iterator[PageServer]:
    with page_server() as s:
        yield s


def _requests(*urls: str | None) -> list[PageRequest]:
    return [
        PageRequest(
            PageCandidate(i, 1, "f", "auto", url, SUMMIT_TITLE, SUMMIT_PARAGRAPHS[0], ""),
            "band",
            0.2,
        )
        for i, url in enumerate(urls, start=1)
    ]


def _fetch(
    *urls: str | None, settings: FullTextSettings = SETTINGS, policy: FetchPolicy = POLICY
) -> list[PageOutcome]:
    return fetch_pages(_requests(*urls), settings=settings, policy=policy)


def _reasons(outcomes: Sequence[PageOutcome]) -> list[tuple[str, str | None]]:
    return [(o.status, o.reason) for o in outcomes]


# --------------------------------------------------------------------------------- size and time


def test_a_huge_page_stops_at_the_byte_cap(server: PageServer) -> None:
    def huge(ex) -> None:
        size = 64 << 20
        ex.respond(
            200,
            {"Content-Type": "text/html", "Content-Length": str(size)},
            content_length=False,
        )
        block = b"<p>" + b"x" * 65530 + b"</p>"
        ex.stream(itertools.repeat(block, size // len(block)))

    url = server.serve_with("/huge", huge)
    (out,) = _fetch(url)
    assert (out.status, out.reason) == ("error", "too_big")
    assert str(SETTINGS.max_bytes) in (out.detail or "") and out.body == ""


def test_a_gzip_bomb_page_stops_at_the_byte_cap(server: PageServer) -> None:
    def bomb(ex) -> None:
        ex.respond(
            200,
            {"Content-Type": "text/html", "Content-Encoding": "gzip"},
            ex.server.bomb(128 << 20),
        )

    (out,) = _fetch(server.serve_with("/bomb", bomb))
    assert (out.status, out.reason) == ("error", "too_big")


def test_a_slow_page_is_cut_at_the_deadline_and_the_next_one_is_fetched(
    server: PageServer,
) -> None:
    def slow(ex) -> None:
        ex.send_raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 100000\r\n"
            b"Connection: close\r\n\r\n"
        )
        ex.trickle(itertools.cycle(b"<p>slow</p>"), 0.05)  # forever, a byte at a time

    slow_url = server.serve_with("/slow", slow)
    silent_url = server.url("/silent")  # accepts and never answers
    good_url = server.serve("/good", PAGE)
    outcomes = _fetch(slow_url, good_url, silent_url)
    assert _reasons(outcomes) == [("error", "timeout"), ("ok", None), ("error", "timeout")]
    assert "deadline" in (outcomes[0].detail or "")


def test_a_host_that_keeps_timing_out_gets_no_more_requests_this_run(server: PageServer) -> None:
    urls = [server.url(f"/silent?n={i}") for i in range(2)] + [server.serve("/good", PAGE)]
    outcomes = _fetch(*urls)
    assert _reasons(outcomes) == [("error", "timeout"), ("error", "timeout"), ("skipped", "host")]
    assert "/good" not in server.paths()


def test_no_page_request_starts_after_the_time_budget(server: PageServer) -> None:
    urls = [server.serve(f"/news/{i}", PAGE, pause=0.6) for i in range(5)]
    outcomes = _fetch(*urls, settings=FullTextSettings(min_delay=0.0, max_seconds=1.0))
    reasons = _reasons(outcomes)
    assert reasons[0] == ("ok", None) and ("skipped", "time") in reasons
    assert reasons.count(("ok", None)) == len(server.hits("/news/")) < 5
    assert all(r == ("skipped", "time") for r in reasons[reasons.index(("skipped", "time")) :])


# ---------------------------------------------------------------------------------- content


def test_a_script_laden_page_gives_its_text_and_no_script(server: PageServer) -> None:
    page = article_html(SUMMIT_TITLE, SUMMIT_PARAGRAPHS, scripts=5).replace(
        b"</article>",
        b'<script type="application/ld+json">{"@type": "NewsArticle", "x": "SCRIPT-TEXT"}</script>'
        b'<p onclick="SCRIPT-TEXT()">Click</p><iframe src="/ad">SCRIPT-TEXT</iframe></article>',
    )
    (out,) = _fetch(server.serve("/scripts", page))
    assert out.status == "ok"
    assert all(p in out.body for p in SUMMIT_PARAGRAPHS)
    assert not any(mark in out.body for mark in SCRIPT_MARKS)


@pytest.mark.parametrize(
    "content_type", ["application/pdf", "text/plain", "application/json", "image/svg+xml", None]
)
def test_a_page_that_is_not_html_is_refused(server: PageServer, content_type: str | None) -> None:
    def answer(ex) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        ex.respond(200, headers, PAGE)

    (out,) = _fetch(server.serve_with("/doc", answer))
    assert (out.status, out.reason, out.body) == ("error", "not_html", "")


def test_a_page_with_no_main_text_is_recorded_as_empty(server: PageServer) -> None:
    (out,) = _fetch(
        server.serve("/empty", b"<html><body><nav>Home</nav><script>x()</script></body></html>")
    )
    assert (out.status, out.reason) == ("error", "empty")


# --------------------------------------------------------------------------- the address policy


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://10.1.2.3/internal", "blocked"),
        ("http://169.254.169.254/latest/meta-data/", "blocked"),
        ("http://[::1]:9/", "blocked"),
        ("file:///etc/passwd", "scheme"),
    ],
)
def test_a_redirect_to_a_private_address_is_refused(
    server: PageServer, target: str, reason: str
) -> None:
    redirect = server.url(f"/redirect?code=302&to={target}")
    (out,) = _fetch(redirect)
    assert (out.status, out.reason) == ("error", reason)
    assert server.paths() == ["/robots.txt", "/redirect"]  # nothing followed


def test_a_link_to_a_private_address_is_never_requested(server: PageServer) -> None:
    outcomes = _fetch(
        "http://10.9.8.7/news/1", "http://192.168.1.1/news/2", None, "ftp://x.example/a"
    )
    assert _reasons(outcomes) == [
        ("error", "blocked"),
        ("error", "blocked"),
        ("skipped", "no_link"),
        ("skipped", "scheme"),
    ]


# ------------------------------------------------------------------------------------ robots.txt


def test_robots_txt_disallowing_our_agent_means_the_page_is_not_fetched(server: PageServer) -> None:
    server.serve(
        "/robots.txt",
        b"User-agent: *\nAllow: /\n\nUser-agent: sanctions-watch\nDisallow: /news/\n",
        content_type="text/plain",
    )
    blocked, allowed = server.serve("/news/a", PAGE), server.serve("/about", PAGE)
    outcomes = _fetch(blocked, allowed)
    assert _reasons(outcomes) == [("error", "robots"), ("ok", None)]
    assert server.paths() == ["/robots.txt", "/about"]


@pytest.mark.parametrize(
    ("status", "fetched"), [(404, True), (410, True), (500, False), (429, False)]
)
def test_robots_txt_missing_allows_and_unavailable_forbids(
    server: PageServer, status: int, fetched: bool
) -> None:
    server.serve("/robots.txt", b"error", content_type="text/plain", status=status)
    (out,) = _fetch(server.serve("/news/a", PAGE))
    assert (out.status == "ok") is fetched
    if not fetched:
        assert out.reason == "robots_unreachable"
        assert server.paths() == ["/robots.txt"]


def test_robots_txt_is_read_once_per_host_per_run(server: PageServer) -> None:
    urls = [server.serve(f"/news/{i}", PAGE) for i in range(3)]
    assert [o.status for o in _fetch(*urls)] == ["ok"] * 3
    assert server.paths().count("/robots.txt") == 1


# ------------------------------------------------------------------------------------ politeness


def _assert_polite(server: PageServer, delay: float) -> None:
    """One request at a time, and ``delay`` between the end of one answer and the next request,
    by the server's own clock."""
    hits = sorted(server.hits(), key=lambda h: h.arrived)
    for before, after in itertools.pairwise(hits):
        assert after.arrived >= before.answered, (before, after)  # never two at once
        assert after.arrived - before.answered >= delay - 1e-3, (before, after)


def test_a_host_with_many_items_gets_one_request_at_a_time_with_the_delay(
    server: PageServer,
) -> None:
    server.serve("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
    urls = [server.serve(f"/news/{i}", PAGE, pause=0.1) for i in range(5)]
    settings = FullTextSettings(min_delay=0.3, workers=8)
    outcomes = _fetch(*urls, settings=settings)
    assert [o.status for o in outcomes] == ["ok"] * 5
    assert len(server.hits()) == 6  # robots.txt and five pages
    _assert_polite(server, 0.3)


def test_crawl_delay_longer_than_ours_is_honoured(server: PageServer) -> None:
    server.serve(
        "/robots.txt", b"User-agent: *\nCrawl-delay: 1\nAllow: /\n", content_type="text/plain"
    )
    urls = [server.serve(f"/news/{i}", PAGE) for i in range(2)]
    outcomes = _fetch(*urls, settings=FullTextSettings(min_delay=0.1))
    assert [o.status for o in outcomes] == ["ok", "ok"]
    hits = sorted(server.hits("/news/"), key=lambda h: h.arrived)
    assert hits[1].arrived - hits[0].answered >= 1.0 - 1e-3


def test_a_host_answering_429_gets_no_more_requests_this_run(server: PageServer) -> None:
    busy = server.serve("/news/0", b"slow down", content_type="text/html", status=429)
    rest = [server.serve(f"/news/{i}", PAGE) for i in (1, 2)]
    outcomes = _fetch(busy, *rest)
    assert _reasons(outcomes) == [("error", "http"), ("skipped", "host"), ("skipped", "host")]
    assert outcomes[0].http_status == 429
    assert server.paths() == ["/robots.txt", "/news/0"]


def test_the_page_budget_caps_requests_per_run(server: PageServer) -> None:
    urls = [server.serve(f"/news/{i}", PAGE) for i in range(4)]
    outcomes = _fetch(*urls, settings=FullTextSettings(min_delay=0.0, max_pages=2))
    assert _reasons(outcomes) == [("ok", None)] * 2 + [("skipped", "budget")] * 2
    assert sorted(server.paths()) == ["/news/0", "/news/1", "/robots.txt"]
