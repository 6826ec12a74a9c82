"""Builders shared by tests of several stages: entries, articles with classifications, story texts.

Import as ``from builders import ...`` (tests/ is on ``sys.path`` through the root conftest).
"""

from __future__ import annotations

import email
import email.message
from datetime import timedelta
from email import policy

from helpers import NOW

from pipeline.classify.model import Evidence
from pipeline.ingest.normalise import article_key, content_hash
from pipeline.ingest.parse import Entry
from pipeline.jobs import Runtime
from pipeline.store.articles import sync_feeds, upsert_entries
from pipeline.store.schema import Classification

EVENTS = [
    "North Korea shipped artillery shells to Russia through Rajin.",
    "A tanker met a North Korean ship off Nampo and transferred diesel at night.",
    "Coal from Nampo was unloaded at a Chinese port under a false declaration.",
    "Hackers tied to Pyongyang laundered stolen crypto through brokers in Cambodia.",
    "Luxury cars reached Pyongyang by rail after passing through three front companies.",
    "Workers from the North were found on building sites near Vladivostok.",
    "Fishing licences in North Korean waters were sold to foreign trawlers last season.",
    "A ballistic missile flew 600 km before falling into the sea east of Wonsan.",
    "Customs in Busan seized machine tools bound for a Pyongyang munitions factory.",
    "A bank in Dandong processed payments for a designated shipping company.",
]


def entry(
    feed: str, title: str, *, url: str | None = None, guid: str | None = None, summary: str = "text"
) -> Entry:
    chash = content_hash(title, summary)
    return Entry(
        feed_id=feed,
        key=article_key(feed, url=url, guid=guid, chash=chash),
        guid=guid,
        url=url,
        title=title,
        summary=summary,
        body="",
        lang="en",
        published_at=NOW - timedelta(hours=1),
        content_hash=chash,
    )


FEEDS = [
    {"id": "wire", "name": "World Wire", "url": "https://wire.example/rss"},
    {"id": "daily", "name": "Daily Courier", "url": "https://daily.example/rss"},
    {"id": "gazette", "name": "Harbour Gazette", "url": "https://gazette.example/rss"},
    {"id": "journal", "name": "Le Journal", "url": "https://journal.example/rss", "language": "fr"},
]

BASE_TITLE = "Tanker seen in ship-to-ship transfer with North Korean vessel off Zhoushan"
BASE = (
    "Satellite images taken on 14 March show the Togo-flagged tanker Ocean Lark 7, IMO 9386421, lying "
    "alongside the North Korean tanker Chon Ma San about 30 nautical miles east of Zhoushan for nearly "
    "six hours. Analysts said both ships had switched off their transponders. Security Council "
    "resolution 2397 caps North Korea's imports of refined petroleum and bans ship-to-ship transfers "
    "with North Korean vessels."
)
SYNDICATED_TITLE = "Satellite images show tanker alongside North Korean ship near Zhoushan"
SYNDICATED = "SEOUL, March 15 (Wire) - " + BASE + " (Reporting by Wire staff; editing by Desk)"
EDITED = BASE.replace("six hours", "seven hours").replace(
    "transponders.",
    "transponders. The owner of Ocean Lark 7 did not respond to requests for comment.",
)
FRENCH_TITLE = (
    "Un pétrolier repéré lors d'un transbordement avec un navire nord-coréen au large de Zhoushan"
)
FRENCH = (
    "Des images satellite prises le 14 mars montrent le pétrolier Ocean Lark 7 (IMO 9386421), sous "
    "pavillon togolais, amarré au pétrolier nord-coréen Chon Ma San à environ 30 milles nautiques à "
    "l'est de Zhoushan pendant près de six heures."
)
OTHER_TITLE = "South Korea detains tanker suspected of transferring oil to North Korean ship"
OTHER = (
    "South Korean customs officers detained the Panama-flagged tanker Blue Pearl 3 at Yeosu on "
    "Wednesday on suspicion of transferring about 4,200 tonnes of refined petroleum to a North Korean "
    "vessel in international waters in October. The 21 crew members are being questioned."
)


def add_article(
    rt: Runtime,
    *,
    feed: str,
    title: str,
    summary: str,
    url: str | None,
    now=NOW,
    lang: str = "en",
    score: float = 0.95,
    regimes: tuple[str, ...] = ("dprk",),
    sentences: tuple[str, ...] = ("Both ships had switched off their transponders.",),
    terms: tuple[str, ...] = ("transponders",),
) -> int | None:
    """Store one entry as ingest would, and a classification as classify would; the new article id
    (None when the entry was a copy recorded as a sighting of an existing article)."""
    chash = content_hash(title, summary)
    entry = Entry(
        feed_id=feed,
        key=article_key(feed, url=url, guid=None, chash=chash),
        guid=None,
        url=url,
        title=title,
        summary=summary,
        body="",
        lang=lang,
        published_at=now - timedelta(minutes=30),
        content_hash=chash,
    )
    with rt.sessions.begin() as s:
        sync_feeds(s, rt.config.feeds)
        new = upsert_entries(s, [entry], now=now).new_ids
        for article_id in new:
            ev = Evidence(sentences=sentences, terms=terms, regimes=regimes)
            s.add(
                Classification(
                    article_id=article_id,
                    revision=1,
                    model_version="test-v1",
                    score=score,
                    threshold=0.5,
                    flagged=score >= 0.5,
                    regimes=list(regimes),
                    evidence=ev.as_dict(),
                    classified_at=now,
                )
            )
    return new[0] if new else None


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)
