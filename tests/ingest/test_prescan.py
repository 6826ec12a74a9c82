"""The pre-scan (pipeline.ingest.prescan): each limit holds exactly at its value, the cut after
``max_items`` entries leaves a well-formed document, what is not markup is not counted, and no input
makes it raise anything but FeedParseError. The 3 MB bombs are in tests/hazards/test_parser_bombs.py;
the parse budget is tested here with threads."""

from __future__ import annotations

import threading
import time
import xml.dom.minidom

import pytest
from helpers import NOW
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError, FeedParseError
from pipeline.ingest.parse import ParseBudget, parse_feed
from pipeline.ingest.prescan import ParseLimits, cut, prescan

SMALL = ParseLimits(max_attributes=4, max_namespaces=3, max_depth=5, max_elements=20, max_tags=60)


def _rss(items: int, extra: str = "") -> bytes:
    body = "".join(
        f"<item><title>Item {i}</title><link>https://p.example/{i}</link></item>"
        for i in range(items)
    )
    return f'<rss version="2.0"><channel><title>t</title>{extra}{body}</channel></rss>'.encode()


def test_each_limit_holds_at_its_value_and_refuses_one_more() -> None:
    def attrs(n: int) -> bytes:
        return b"<r " + b" ".join(b'a%d="v"' % i for i in range(n)) + b"/>"

    def prefixes(n: int) -> bytes:
        return b"<r " + b" ".join(b'xmlns:p%d="u%d"' % (i, i) for i in range(n)) + b"/>"

    def depth(n: int) -> bytes:
        return b"<x>" * n + b"</x>" * n

    def elements(n: int) -> bytes:
        return b"<r>" + b"<x/>" * (n - 1) + b"</r>"

    cases = [
        (attrs, 4, "max_attributes"),
        (prefixes, 3, "max_namespaces"),
        (depth, 5, "max_depth"),
        (elements, 20, "max_elements"),
    ]
    for build, limit, setting in cases:
        prescan(build(limit), SMALL)
        with pytest.raises(FeedParseError, match=rf"fetch\.{setting}\); refused"):
            prescan(build(limit + 1), SMALL)


def test_html_in_text_is_held_to_the_attribute_tag_and_length_limits() -> None:
    ok = b'<r><d>&lt;a href=&quot;https://x.example/?a=1&amp;b=2&quot; title="t"&gt;x</d></r>'
    prescan(ok, SMALL)
    too_many = b"<r><d>&lt;a a=1 b=2 c=3 d=4 e=5&gt;x</d></r>"
    with pytest.raises(FeedParseError, match="HTML content with more than 4 attributes"):
        prescan(too_many, SMALL)
    in_cdata = b"<r><d><![CDATA[<a a=1 b=2 c=3 d=4 e=5>x]]></d></r>"
    with pytest.raises(FeedParseError, match="HTML content"):
        prescan(in_cdata, SMALL)
    # A "=====" rule is not a tag's attributes; a long quoted value is not a long tag.
    prescan(b"<r><d>" + b"= " * 3 + b"=" * 500 + b"</d></r>", SMALL)
    prescan(b'<r><d>&lt;img src="data:' + b"A" * 20_000 + b'"&gt;</d></r>', ParseLimits())
    prescan(b"<r><d>&lt;img src=&quot;data:" + b"A" * 20_000 + b"&quot;&gt;</d></r>", ParseLimits())
    with pytest.raises(FeedParseError, match="max_tag_bytes"):
        prescan(b"<r><d>&lt;img src=" + b"A" * 20_000 + b"&gt;</d></r>", ParseLimits())
    with pytest.raises(FeedParseError, match="max_tags"):
        prescan(b"<r><d>" + b"&lt;b&gt;" * 61 + b"</d></r>", SMALL)


def test_comments_cdata_and_instructions_are_not_markup() -> None:
    hidden = b"<!-- <item><x a='1'/><x/><x/></item> --><?pi item ?>"
    shape = prescan(b"<r>" + hidden + b"<![CDATA[<item></item>]]></r>", SMALL, max_items=1)
    assert (shape.entries, shape.elements, shape.cut_at) == (0, 1, None)


@pytest.mark.parametrize("kind", ["rss", "atom", "rdf"])
def test_the_cut_keeps_the_first_entries_and_leaves_a_well_formed_document(kind: str) -> None:
    if kind == "rss":
        doc = _rss(5)
    elif kind == "atom":
        entries = "".join(f"<entry><title>E{i}</title><id>e{i}</id></entry>" for i in range(5))
        doc = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'.encode()
    else:
        items = "".join(f'<item rdf:about="i{i}"><title>R{i}</title></item>' for i in range(5))
        doc = (
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns="http://purl.org/rss/1.0/"><channel rdf:about="c"><title>t</title></channel>'
            f"{items}</rdf:RDF>"
        ).encode()
    shape = prescan(doc, max_items=3)
    assert shape.entries == 5 and shape.cut_at is not None
    kept = cut(doc, shape)
    dom = xml.dom.minidom.parseString(kept)  # raises if not well-formed
    names = {"rss": "item", "atom": "entry", "rdf": "item"}
    assert len(dom.getElementsByTagName(names[kind])) == 3
    assert prescan(doc, max_items=5).cut_at is None


def test_entries_inside_entries_are_not_counted() -> None:
    doc = _rss(2).replace(b"<title>Item 0</title>", b"<title>0</title><entry><item/></entry>")
    assert prescan(doc, max_items=2).entries == 2


def test_parse_feed_cuts_before_feedparser_and_reports_what_it_left_out() -> None:
    parsed = parse_feed(_rss(7), feed_id="p", now=NOW, max_items=3)
    assert [e.title for e in parsed.entries] == ["Item 0", "Item 1", "Item 2"]
    assert parsed.entries_seen == 7
    assert "4 entries over max_items=3 ignored" in parsed.problems
    assert not any("ill-formed" in p for p in parsed.problems)


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_depth"):
        ParseLimits(max_depth=0)
    with pytest.raises(ConfigError, match="max_tag_bytes"):
        ParseLimits(max_tag_bytes=10)
    with pytest.raises(ConfigError):
        ParseBudget(0)


_PIECES = st.sampled_from(
    [
        "<",
        ">",
        "/",
        "<a",
        "</a>",
        "<item>",
        "</item>",
        "<entry/>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<?",
        "?>",
        "<!x",
        '"',
        "'",
        "=",
        " x='1'",
        ' xmlns:p="u"',
        "&lt;",
        "&gt;",
        "&quot;",
        "text",
        "\u00e9",
    ]
)


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(_PIECES, max_size=60), max_items=st.integers(0, 3))
def test_any_markup_gives_a_shape_or_a_feed_parse_error(pieces: list[str], max_items: int) -> None:
    data = "".join(pieces).encode()
    try:
        shape = prescan(data, SMALL, max_items=max_items)
    except FeedParseError:
        return
    if shape.cut_at is not None:
        assert 0 <= shape.cut_at < len(data) and cut(data, shape).startswith(data[: shape.cut_at])


def test_the_budget_never_holds_more_than_its_bytes_and_lets_a_big_document_through_alone() -> None:
    budget = ParseBudget(10)
    lock = threading.Lock()
    inside: list[int] = []
    most = [0]

    def parse(weight: int) -> None:
        with budget.hold(weight):
            with lock:
                inside.append(min(weight, 10))
                most[0] = max(most[0], sum(inside))
            time.sleep(0.01)  # overlap if the budget let it
            with lock:
                inside.remove(min(weight, 10))

    threads = [threading.Thread(target=parse, args=(w,)) for w in (6, 6, 4, 3, 50, 2, 6, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert most[0] <= 10 and budget.peak <= 10
