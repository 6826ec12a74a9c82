"""Hazards: poison in feed text on its way to storage and to the alert emails.

* CR/LF in a title, NUL bytes, a 5 MB summary: no injected header, a one-line subject, every other
  alert delivered (through a real feed, and straight from the database);
* ``<script>``, tracking images, forms with password inputs, ``javascript:`` links, ``style``, and
  text that *is* ``<script>`` as plain text: none of it reaches an email as markup; links are
  http(s) only;
* NUL and lone surrogates (raw, as character references, as invalid UTF-8): cleaned before
  storage, and both SQLite and PostgreSQL accept the rows.

The classifier is bypassed (``flag_all``): these are about what happens to hostile text, whatever
the model makes of it.
"""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from html.parser import HTMLParser

import pytest
from hazardkit import RECIPIENT, flag_all, mails, rss, sample_items, write_feed
from helpers import NOW
from sqlalchemy import select

from pipeline.devtools.mailsink import MailSink
from pipeline.ingest.normalise import article_key, content_hash
from pipeline.ingest.parse import Entry
from pipeline.jobs import Runtime, deliver, ingest, record_alerts
from pipeline.store.articles import upsert_entries
from pipeline.store.schema import Article, Delivery, Feed, FetchLog

MiB = 1 << 20
EXPECTED_HEADERS = {
    "subject",
    "from",
    "to",
    "message-id",
    "date",
    "auto-submitted",
    "x-auto-response-suppress",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}

pytestmark = pytest.mark.timeout(120)


def _runtime(make_config, db_url: str, url: str, sink: MailSink, **fetch) -> Runtime:
    return Runtime.open(
        make_config(
            database_url=db_url,
            feeds=[{"id": "poison", "url": url, "language": "en"}],
            smtp_port=sink.port,
            subscriptions=[{"id": "compliance", "recipients": [RECIPIENT]}],
            settings={"fetch": fetch} if fetch else None,
        )
    )


def _check_headers(raw: bytes) -> email.message.EmailMessage:
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    names = [
        line.split(b":", 1)[0].decode().lower()
        for line in head.splitlines()
        if line and not line[:1].isspace()
    ]
    assert set(names) <= EXPECTED_HEADERS, names
    assert names.count("subject") == 1 and names.count("to") == 1
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg.defects == []
    subject = str(msg["Subject"])
    assert "\n" not in subject and "\r" not in subject and "\x00" not in subject
    assert len(subject) <= 200
    assert str(msg["To"]) == RECIPIENT
    assert msg["Bcc"] is None and msg["Cc"] is None and msg["X-Injected"] is None
    return msg


def test_poison_in_titles_and_summaries_injects_nothing_and_blocks_nothing(
    make_config, db_url: str, feed_dir, feed_dir_server, mail_sink: MailSink
) -> None:
    s = sample_items()
    items = [
        {
            "title": "Arms seized\r\nBcc: victim@example.org\r\nX-Injected: yes",
            "link": "https://poison.example/crlf",
            "description": s["origin"]["summary"],
        },
        {
            "title": "Tanker\u2028went dark\u0085near Nampo\rSubject: forged",
            "link": "https://poison.example/separators",
            "description": s["tanker"]["summary"],
        },
        {
            "title": "Five megabytes of summary",
            "link": "https://poison.example/big",
            "description": s["libya"]["summary"] + " " + "padding " * (5 * MiB // 8),
        },
        {
            "title": s["darfur"]["title"],
            "link": "https://poison.example/ok",
            "description": s["darfur"]["summary"],
        },
    ]
    doc = rss(items)
    # NUL bytes (raw, and as a character reference) in the title of one more item.
    nul_item = (
        b"<item><title>Rifles\x00 hidden&#0; in containers</title>"
        b"<link>https://poison.example/nul</link><description>"
        + s["haiti"]["summary"].encode()
        + b"</description></item>"
    )
    doc = doc.replace(b"</channel>", nul_item + b"</channel>")
    write_feed(feed_dir, "poison.xml", doc)
    rt = _runtime(
        make_config, db_url, feed_dir_server.url_for("poison.xml"), mail_sink, max_bytes=8 * MiB
    )
    try:
        report = ingest(rt, now=NOW, run_id="poison")
        assert (report["feeds_ok"], report["articles_new"]) == (1, 5), report
        flag_all(rt.sessions)
        record_alerts(rt, now=NOW)
        delivered = deliver(rt, now=NOW)
        with rt.sessions() as db:
            rows = list(db.scalars(select(Delivery)))
            titles = list(db.scalars(select(Article.title)))
    finally:
        rt.close()
    assert rows and all(r.status == "sent" for r in rows), [(r.status, r.last_error) for r in rows]
    assert delivered["sent"] == len(rows) == len(mail_sink.messages)
    assert not any("\x00" in t for t in titles)
    for raw in mail_sink.messages:
        assert len(raw) < 1 * MiB  # the 5 MB summary was cut when parsed
        _check_headers(raw)


def test_poison_straight_from_the_database_is_contained(
    make_config, db_url: str, mail_sink: MailSink
) -> None:
    """Rows that never went through the parser (an import, a migration, a bug): the mail side
    still keeps headers intact and delivers the other alerts."""
    rt = _runtime(make_config, db_url, "https://poison.example/rss", mail_sink)
    s = sample_items()
    texts = [
        (
            "Shells\r\nBcc: victim@example.org\r\n\r\n<script>alert(1)</script>",
            s["origin"]["summary"],
        ),
        ("Five megabytes", s["libya"]["summary"] + " padding" * (5 * MiB // 8)),
        (s["darfur"]["title"], s["darfur"]["summary"]),
    ]
    entries = []
    for i, (title, summary) in enumerate(texts):
        chash = content_hash(title, summary)
        url = f"https://poison.example/db/{i}"
        entries.append(
            Entry(
                feed_id="poison",
                key=article_key("poison", url=url, guid=None, chash=chash),
                guid=None,
                url=url,
                title=title,
                summary=summary,
                body="",
                lang="en",
                published_at=NOW - timedelta(hours=1),
                content_hash=chash,
            )
        )
    try:
        with rt.sessions.begin() as db:
            db.add(
                Feed(
                    id="poison",
                    url="https://poison.example/rss",
                    name="Poison",
                    consecutive_failures=0,
                )
            )
            db.flush()
            upsert_entries(db, entries, now=NOW)
        flag_all(rt.sessions)
        record_alerts(rt, now=NOW)
        deliver(rt, now=NOW)
        with rt.sessions() as db:
            rows = list(db.scalars(select(Delivery)))
    finally:
        rt.close()
    assert len(rows) == 3 and all(r.status == "sent" for r in rows), [
        (r.status, r.last_error) for r in rows
    ]
    assert len(mail_sink.messages) == 3

    for raw in mail_sink.messages:
        msg = _check_headers(raw)
        html = msg.get_body(("html",)).get_content()
        if "Shells" in str(msg["Subject"]):  # the stored "<script>" text is shown, escaped
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html


# -------------------------------------------------------------------------------- hostile markup


class _Markup(HTMLParser):
    """Collects the tags, URL attributes and inline event handlers of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("href", "src", "action", "formaction", "background", "poster", "srcset"):
                self.urls.append(value or "")
            if name.startswith("on"):
                self.handlers.append(name)


HOSTILE_SUMMARY = (
    '<script>alert("summary")</script><style>body{display:none}</style>'
    '<img src="https://tracker.example/pixel.gif?u=1" width="1" height="1">'
    '<form action="https://evil.example/login"><input type="password" name="p"></form>'
    '<a href="javascript:alert(1)">click</a> <a href=" JaVaScRiPt:alert(2)">again</a>'
    '<a href="data:text/html;base64,PHNjcmlwdD4=">data</a> <a href="vbscript:msgbox(1)">vb</a>'
    '<iframe src="https://evil.example/frame"></iframe><svg onload="alert(3)"></svg>'
    '<p onclick="alert(4)" style="position:fixed;top:0">{text}</p>'
)


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(document.cookie)",
        " JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "https://news.example/fine?x=1&y=<script>",
    ],
)
def test_hostile_markup_never_reaches_an_email(
    make_config, sqlite_url: str, feed_dir, feed_dir_server, mail_sink: MailSink, link: str
) -> None:
    s = sample_items()
    items = [
        {
            # Text that *is* markup, as plain text: shown, escaped, never a tag.
            "title": "<script>alert('title')</script> " + s["origin"]["title"],
            "link": link,
            "description": HOSTILE_SUMMARY.replace("{text}", s["origin"]["summary"]),
        }
    ]
    write_feed(feed_dir, "hostile.xml", rss(items))
    rt = _runtime(make_config, sqlite_url, feed_dir_server.url_for("hostile.xml"), mail_sink)
    try:
        assert ingest(rt, now=NOW, run_id="markup")["articles_new"] == 1
        flag_all(rt.sessions)
        record_alerts(rt, now=NOW)
        assert deliver(rt, now=NOW)["sent"] == 1
    finally:
        rt.close()
    (msg,) = mails(mail_sink.messages)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    markup = _Markup()
    markup.feed(html)
    assert markup.tags.isdisjoint(
        {"script", "style", "img", "form", "input", "iframe", "svg", "object", "embed", "link"}
    ), markup.tags
    assert markup.handlers == []
    assert all(u.startswith(("https://", "http://", "mailto:")) for u in markup.urls), markup.urls
    assert "tracker.example" not in html and "evil.example" not in html
    lowered = html.lower()
    assert (
        "javascript:" not in lowered and "vbscript:" not in lowered and "data:text" not in lowered
    )
    # Text that is "<script>" is treated as markup and dropped when parsed (feedparser and
    # html_to_text), or shown escaped: never a tag.
    assert "<script" not in lowered and "alert('title')" not in html
    for part in (text, html):
        assert "tracker.example" not in part and "javascript:" not in part.lower()


# ------------------------------------------------------------------------ NUL and lone surrogates


def test_nul_and_lone_surrogates_are_cleaned_and_both_databases_accept_the_rows(
    make_config, db_url: str, feed_dir, feed_dir_server
) -> None:
    docs = {
        # Raw NUL and other C0 controls in every field, and in the feed's language.
        "raw-nul": b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<language>en\x00zz</language><item><title>Arms\x00 seized\x01 at port</title>"
        b"<link>https://n.example/1\x00</link><guid>g\x00-1</guid>"
        b"<description>Sum\x00mary \x1b[31mred</description></item></channel></rss>",
        # Character references to NUL and to lone surrogates (and a huge one).
        "char-refs": b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Missiles &#0; &#xD800; &#xDFFF; &#55296; launched</title>"
        b"<link>https://n.example/2</link><guid>&#xD800;g-2</guid>"
        b"<description>High &#xD83D; surrogate &#99999999999999999999; &#x1F680; ok</description>"
        b"</item></channel></rss>",
        # Surrogates encoded as (invalid) UTF-8 bytes, declared UTF-8.
        "utf8-surrogates": b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        b"<title>t</title><item><title>Drones \xed\xa0\x80 shipped</title>"
        b"<link>https://n.example/3</link><description>x \xed\xbf\xbf y</description></item>"
        b"</channel></rss>",
        # The same in UTF-16 (lone surrogate code units).
        "utf16-lone": b"\xff\xfe"
        + '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>Rockets X shipped</title><link>https://n.example/4</link></item></channel></rss>".encode(
            "utf-16-le"
        ).replace("X".encode("utf-16-le"), b"\x00\xd8"),
        # A language hint no column can hold.
        "long-lang": b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<language>" + b"x" * 300 + b"</language><item><title>Fuel smuggled</title>"
        b"<link>https://n.example/5</link></item></channel></rss>",
    }
    feeds = []
    for name, content in docs.items():
        write_feed(feed_dir, f"{name}.xml", content)
        feeds.append({"id": name, "url": feed_dir_server.url_for(f"{name}.xml")})
    rt = Runtime.open(make_config(database_url=db_url, feeds=feeds))
    try:
        report = ingest(rt, now=NOW, run_id="nul")
        with rt.sessions() as db:
            articles = list(db.scalars(select(Article)))
            log = list(db.scalars(select(FetchLog)))
    finally:
        rt.close()
    assert report["errors"] == {} and report["feeds_ok"] == len(docs), report["errors"]
    assert len(articles) == len(docs)
    for a in articles:
        for value in (a.title, a.summary, a.body, a.url or "", a.guid or "", a.lang):
            assert "\x00" not in value and "\x1b" not in value
            value.encode("utf-8")  # raises on a lone surrogate
        assert len(a.lang) <= 3
    by_url = {a.url: a for a in articles}
    assert by_url["https://n.example/1"].title == "Arms seized at port"
    assert "Missiles" in by_url["https://n.example/2"].title
    for row in log:
        (row.error or "").encode("utf-8")
        assert "\x00" not in (row.error or "")
