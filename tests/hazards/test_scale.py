"""Hazard: a big first cycle (issue 10, item 6).

``classify`` bound every new article id of the cycle into one ``IN (...)``: with 250,000 new items
(5,000 feeds of 50) the run ingested for ten minutes and then failed with ``too many SQL variables``
(stock SQLite allows 32,766, PostgreSQL 65,535 bind parameters), nothing classified or mailed; the
DAG carried the same ids through XCom.

Pass criterion: 100,000 new articles (written as ingest writes them, straight into the database to
keep the test short) are all classified by one ``classify`` call, on SQLite and on PostgreSQL, with
the shipped TF-IDF model (the real scoring path, fast enough for 100,000 items); and what ingest
reports (what goes into XCom) carries counts, never a list of article ids.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from hazardkit import rss, write_feed
from helpers import NOW, ROOT
from sqlalchemy import func, insert, select

from pipeline.classify.registry import load_version
from pipeline.ingest.normalise import article_key, content_hash
from pipeline.jobs import Runtime, classify, ingest
from pipeline.store.articles import sync_feeds
from pipeline.store.schema import Article, Classification

N = 100_000
# The shipped TF-IDF model (title-summary-body/v1): the fusion model embeds every text, which
# would take most of an hour for 100,000 items here.
TFIDF = "20261127-043425-tfidfwordcha-8acaf0"

pytestmark = pytest.mark.timeout(600)


def _rows(start: int, stop: int) -> list[dict]:
    rows = []
    for i in range(start, stop):
        if i % 20 == 0:
            title = f"Consignment {i} of artillery shells seized on its way to Nampo"
        else:
            title = f"Harbour festival {i} draws record crowds to the waterfront"
        summary = f"Report number {i} from the wire."
        chash = content_hash(title, summary)
        url = f"https://scale.example/{i}"
        rows.append(
            {
                "key": article_key("scale", url=url, guid=None, chash=chash),
                "feed_id": "scale",
                "guid": None,
                "url": url,
                "title": title,
                "summary": summary,
                "body": "",
                "lang": "en",
                "published_at": NOW - timedelta(hours=1),
                "first_seen_at": NOW,
                "updated_at": NOW,
                "content_hash": chash,
                "revision": 1,
            }
        )
    return rows


@pytest.mark.slow
def test_a_first_cycle_with_100000_new_items_is_all_classified(make_config, db_url: str) -> None:
    config = make_config(
        database_url=db_url,
        feeds=[{"id": "scale", "url": "http://127.0.0.1:9/scale.xml", "full_text": "never"}],
    )
    with Runtime.open(config) as rt:
        with rt.sessions.begin() as session:
            sync_feeds(session, config.feeds)
        for start in range(0, N, 10_000):
            with rt.sessions.begin() as session:
                session.execute(insert(Article), _rows(start, start + 10_000))
        rt._model = load_version(ROOT / "models", TFIDF)
        started = time.monotonic()
        report = classify(rt, now=NOW)
        elapsed = time.monotonic() - started
        with rt.sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Classification))
            distinct = session.scalar(select(func.count(func.distinct(Classification.article_id))))
    print(f"{N:,} new articles classified in {elapsed:.1f} s ({db_url.split(':')[0]})")
    assert report.classified == N and stored == N and distinct == N, (report, stored)
    assert report.flagged > 0, report
    assert "flagged_ids" not in report.as_dict()  # counts, not ids, go into XCom
    assert elapsed < 300, elapsed  # measured: about 60 s on an idle 2-core machine


def test_what_ingest_hands_to_the_next_task_holds_no_article_ids(
    make_config, feed_dir, feed_dir_server
) -> None:
    items = [{"title": f"Item {i}", "link": f"https://x.example/{i}"} for i in range(30)]
    write_feed(feed_dir, "f.xml", rss(items))
    config = make_config(feeds=[{"id": "f", "url": feed_dir_server.url_for("f.xml")}])
    with Runtime.open(config) as rt:
        report = ingest(rt, now=NOW, run_id="xcom")
    xcom = report.as_xcom()
    assert report.articles_new == 30
    assert xcom["run_id"] == "xcom"
    lists = {k: v for k, v in xcom.items() if isinstance(v, list | tuple) and k != "failed_feeds"}
    assert lists == {}, f"id lists in XCom: {sorted(lists)}"


def test_the_alert_report_puts_counts_not_alert_ids_into_xcom() -> None:
    from pipeline.reports import AlertsReport

    report = AlertsReport(alerts_new=3, alert_ids=(1, 2, 3), digests_new=1, digest_ids=(9,))
    xcom = report.as_xcom()
    assert xcom["alerts_new"] == 3 and xcom["digests_new"] == 1
    assert not any(isinstance(v, list | tuple) for v in xcom.values()), xcom
