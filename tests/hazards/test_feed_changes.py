"""Hazards: a feed changes its GUID scheme, has entries without GUIDs, and edits an entry after
publication. Through the whole cycle (real feed server, the shipped model, real SMTP sink):

* a GUID scheme change (``a-1`` → ``https://news.example/?p=1`` or ``tag:...``) is no new article and
  no new alert, with or without a link;
* an entry without GUID (or without GUID and link) keeps one key across runs;
* an edit updates the stored row (revision + 1, new text) and is classified again, but alerts again
  only when the label flips (not flagged → flagged).
"""

from __future__ import annotations

from hazardkit import RECIPIENT, message_ids_to, rss, sample_items, write_feed
from helpers import NOW
from sqlalchemy import func, select

from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, run_once
from pipeline.store.schema import Alert, Article, Classification


def _items(version: int) -> list[dict[str, str]]:
    s = sample_items()
    origin = s["origin"]["summary"]
    a = {"title": s["origin"]["title"], "link": "https://news.example/a1", "description": origin}
    e = {"title": s["tanker"]["title"], "description": s["tanker"]["summary"]}  # no link
    c = {"title": s["libya"]["title"], "description": s["libya"]["summary"]}  # no GUID, no link
    b = {"title": s["cyprus"]["title"], "link": "https://news.example/b1", "guid": "b-1"}
    b["description"] = s["cyprus"]["summary"]
    if version == 1:
        a["guid"], e["guid"] = "a-1", "e-1"
    else:  # the feed's software changed its GUID scheme
        a["guid"], e["guid"] = "https://news.example/?p=1", "tag:news.example,2024:e-1"
    if version == 3:
        # A correction that keeps the story what it was; the benign item is rewritten into a
        # flagged story under the same link and GUID.
        a["description"] = origin.replace(
            "about 6,700 containers", "about 6,700 shipping containers"
        )
        assert a["description"] != origin
        b["title"], b["description"] = s["darfur"]["title"], s["darfur"]["summary"]
    return [c, b, e, a] if version > 1 else [a, b, c, e]


def test_guid_scheme_change_no_guid_and_edits_alert_only_when_the_label_flips(
    make_config, feed_dir, feed_dir_server, mail_sink: MailSink
) -> None:
    write_feed(feed_dir, "desk.xml", rss(_items(1)))
    config = make_config(
        feeds=[{"id": "desk", "url": feed_dir_server.url_for("desk.xml"), "language": "en"}],
        smtp_port=mail_sink.port,
        subscriptions=[{"id": "compliance", "recipients": [RECIPIENT]}],
    )
    rt = Runtime.open(config)
    try:
        first = run_once(rt, now=NOW, run_id="v1")
        assert (first["articles_new"], first["flagged"], first["alerts_new"]) == (4, 3, 3)
        with rt.sessions() as s:
            keys = dict(s.execute(select(Article.title, Article.key)).all())

        write_feed(feed_dir, "desk.xml", rss(_items(2)))
        second = run_once(rt, now=NOW.replace(hour=13), run_id="v2")
        assert (second["articles_new"], second["articles_updated"]) == (0, 0)
        assert (second["alerts_new"], second["alerts_sent"]) == (0, 0)
        with rt.sessions() as s:
            assert dict(s.execute(select(Article.title, Article.key)).all()) == keys

        write_feed(feed_dir, "desk.xml", rss(_items(3)))
        third = run_once(rt, now=NOW.replace(hour=14), run_id="v3")
        assert (third["articles_new"], third["articles_updated"]) == (0, 2)
        assert (third["alerts_new"], third["alerts_sent"]) == (1, 1)  # only the flipped label
        with rt.sessions() as s:
            assert s.scalar(select(func.count()).select_from(Article)) == 4
            edited = s.scalars(
                select(Article).where(Article.url == "https://news.example/a1")
            ).one()
            flipped = s.scalars(
                select(Article).where(Article.url == "https://news.example/b1")
            ).one()
            assert edited.revision == 2 and "6,700 shipping containers" in edited.summary
            assert flipped.revision == 2 and flipped.title.startswith("Experts trace weapons")
            # Both edits were classified again; the story of the edited one has still one alert.
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(Classification)
                    .where(Classification.article_id.in_([edited.id, flipped.id]))
                )
                == 4
            )
            assert s.scalar(select(func.count()).select_from(Alert)) == 4
    finally:
        rt.close()
    received = message_ids_to(mail_sink.messages)
    assert sum(received.values()) == len(received) == 4
