"""Stories: near-duplicate flagged articles grouped into one story, one alert per story, updates only
when severity rises. Pure grouping functions, then the whole path on real SQLite/PostgreSQL and a real
SMTP server."""

from __future__ import annotations

import importlib.util
from datetime import timedelta

import pytest
from builders import (
    BASE,
    BASE_TITLE,
    EDITED,
    FEEDS,
    FRENCH,
    FRENCH_TITLE,
    OTHER,
    OTHER_TITLE,
    SYNDICATED,
    SYNDICATED_TITLE,
    add_article,
    parse,
)
from helpers import NOW, ROOT
from sqlalchemy import func, select

from pipeline.alerts.stories import (
    StoryIndex,
    StoryText,
    anchors,
    fingerprint,
    shingles,
    similarity,
    words,
)
from pipeline.jobs import Runtime, deliver, record_alerts
from pipeline.store.schema import Alert, Article, Story

# ------------------------------------------------------------------------------- shared helpers


@pytest.fixture
def story_rt(make_config, db_url: str, mail_sink):
    with Runtime.open(
        make_config(database_url=db_url, feeds=FEEDS, smtp_port=mail_sink.port)
    ) as rt:
        yield rt


# ------------------------------------------------------------------------------ pure functions


def test_words_fold_case_punctuation_and_cut_cjk_into_bigrams() -> None:
    assert words("North-Korean TANKER, off Nampo!") == ["north", "korean", "tanker", "off", "nampo"]
    assert words("朝鲜罗津港") == ["朝鲜", "鲜罗", "罗津", "津港"]
    assert words("٣٥٠ km") == ["350", "km"]  # Arabic-Indic digits


def test_shingles_of_short_and_empty_texts() -> None:
    assert shingles("") == set()
    assert shingles("Arms seized") == {"arms seized"}
    assert shingles("a b c d") == {"a b c", "b c d"}


def test_anchors_normalise_numbers_and_keep_names_across_languages() -> None:
    en = anchors(
        "More than 12,000 containers left Rajin in 2024 for Dunai, resolution 2397 says.",
        ignore_numbers=[2397],
    )
    fr = anchors("Plus de 12 000 conteneurs ont quitté Rajin pour Dunai.")
    de = anchors("Mehr als 12.000 Container verließen Rajin.")
    assert {"n:12000", "w:rajin", "w:dunai"} <= en
    assert (
        "n:2024" not in en and "n:2397" not in en
    )  # years and resolution numbers identify nothing
    assert "n:12000" in fr and "n:12000" in de and "w:rajin" in fr
    assert "imo:9386421" in anchors("the tanker (IMO 9386421) and IMO No. 9386421")
    assert anchors("2,5 millions") >= {"n:2.5"}


def test_similarity_respects_the_time_window() -> None:
    a = StoryText(1, BASE_TITLE, f"{BASE_TITLE}\n{BASE}", "en", NOW, ("dprk",))
    b = StoryText(
        2,
        SYNDICATED_TITLE,
        f"{SYNDICATED_TITLE}\n{SYNDICATED}",
        "en",
        NOW + timedelta(hours=2),
        ("dprk",),
    )
    late = StoryText(3, SYNDICATED_TITLE, b.text, "en", NOW + timedelta(days=5), ("dprk",))
    assert similarity(fingerprint(a), fingerprint(b)) > 0.6
    assert similarity(fingerprint(a), fingerprint(late)) == 0.0


def test_story_index_groups_copies_and_translation_not_another_story() -> None:
    index = StoryIndex(0.4)
    index.add(
        fingerprint(
            StoryText(1, BASE_TITLE, f"{BASE_TITLE}\n{BASE}", "en", NOW, ("dprk",)),
            ignore_numbers=[2397],
        ),
        10,
    )

    def best(key, title, text, lang="en"):
        fp = fingerprint(
            StoryText(key, title, f"{title}\n{text}", lang, NOW + timedelta(hours=1), ("dprk",)),
            ignore_numbers=[2397],
        )
        return index.best(fp)

    assert best(2, SYNDICATED_TITLE, SYNDICATED)[0] == 10
    assert best(3, BASE_TITLE, EDITED)[0] == 10
    assert best(4, FRENCH_TITLE, FRENCH, "fr")[0] == 10
    assert best(5, OTHER_TITLE, OTHER) is None


def _bench():
    spec = importlib.util.spec_from_file_location(
        "story_threshold", ROOT / "bench" / "story_threshold.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_labelled_pairs_keep_the_documented_quality(capsys) -> None:
    """The figures in docs/alerts.md: a regression gate on data/story_pairs.jsonl."""
    bench = _bench()
    pairs = bench.load_pairs(ROOT / "data" / "story_pairs.jsonl")
    assert len(pairs) >= 150 and len({p["id"] for p in pairs}) == len(pairs)
    kinds = {p["kind"] for p in pairs}
    assert {"syndicated", "edited", "translated", "same_topic", "template_twin"} <= kinds
    from pipeline.config import AlertSettings

    assert bench.main(["--json", "--threshold", str(AlertSettings().story_threshold)]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["via_story_index"]["precision"] >= 0.98
    assert report["via_story_index"]["recall"] >= 0.93


# --------------------------------------------------------------------- through the database


def test_syndicated_and_edited_copies_one_story_one_alert_then_one_update(
    story_rt: Runtime, mail_sink
) -> None:
    rt = story_rt
    first = add_article(
        rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/a/1"
    )
    other = add_article(
        rt, feed="wire", title=OTHER_TITLE, summary=OTHER, url="https://wire.example/a/2"
    )
    rec = record_alerts(rt, now=NOW)
    assert (rec["alerts_new"], rec["stories_new"], rec["stories_joined"]) == (2, 2, 0)
    assert deliver(rt, now=NOW)["sent"] == 4  # two stories × two recipients

    # A syndicated copy (new headline, dateline, credit line; another outlet): joins, no alert.
    later = NOW + timedelta(hours=1)
    copy = add_article(
        rt,
        feed="daily",
        title=SYNDICATED_TITLE,
        summary=SYNDICATED,
        url="https://daily.example/s/9",
        now=later,
    )
    rec = record_alerts(rt, now=later)
    assert (rec["alerts_new"], rec["stories_new"], rec["stories_joined"]) == (0, 0, 1)
    assert deliver(rt, now=later)["sent"] == 0

    # An edited copy from a third outlet: three independent sources raise the severity → one update.
    later2 = NOW + timedelta(hours=2)
    edited = add_article(
        rt,
        feed="gazette",
        title=BASE_TITLE + ", images show",
        summary=EDITED,
        url="https://gazette.example/e",
        now=later2,
    )
    rec = record_alerts(rt, now=later2)
    assert (rec["alerts_new"], rec["updates_new"], rec["stories_joined"]) == (1, 1, 1)
    assert (
        record_alerts(rt, now=later2 + timedelta(minutes=15))["alerts_new"] == 0
    )  # a retried task
    assert deliver(rt, now=later2)["sent"] == 2

    with rt.sessions() as s:
        story_of = dict(s.execute(select(Article.id, Article.story_id)).all())
        assert story_of[first] == story_of[copy] == story_of[edited] != story_of[other]
        alerts = s.execute(
            select(Alert.kind, Alert.severity, Alert.previous_severity)
            .where(Alert.story_id == story_of[first])
            .order_by(Alert.id)
        ).all()
        assert [tuple(a) for a in alerts] == [("new", "high", None), ("update", "critical", "high")]
        story = s.get(Story, story_of[first])
        assert (story.severity, story.alerted_severity, story.lead_article_id) == (
            "critical",
            "critical",
            first,
        )
    msgs = [parse(m) for m in mail_sink.messages]
    updates = [m for m in msgs if "UPDATE" in m["Subject"]]
    assert len(updates) == 2 and len(msgs) == 6
    subject = updates[0]["Subject"]
    # (the breach kind, when tagged, sits between the regime and the headline: docs/alerts.md)
    assert subject.startswith("[sanctions-watch] UPDATE CRITICAL (was HIGH) · DPRK · ")
    assert subject.endswith(
        " · Tanker seen in ship-to-ship transfer with North Korean vessel off Zhoushan"
    )
    text = updates[0].get_body(("plain",)).get_content()
    html = updates[0].get_body(("html",)).get_content()
    assert "UPDATE to alert on story" in text and "from HIGH to CRITICAL" in text
    for outlet, url in (
        ("World Wire", "https://wire.example/a/1"),
        ("Daily Courier", "https://daily.example/s/9"),
        ("Harbour Gazette", "https://gazette.example/e"),
    ):
        assert outlet in text and url in text and f'href="{url}"' in html
    assert "3 independent sources (+1)" in text and "SOURCES (3)" in text


def test_translated_headline_joins_the_story(story_rt: Runtime) -> None:
    rt = story_rt
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/a/1")
    record_alerts(rt, now=NOW)
    later = NOW + timedelta(hours=3)
    fr = add_article(
        rt,
        feed="journal",
        title=FRENCH_TITLE,
        summary=FRENCH,
        url="https://journal.example/fr/1",
        lang="fr",
        now=later,
    )
    rec = record_alerts(rt, now=later)
    assert (rec["stories_joined"], rec["alerts_new"]) == (1, 0)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Story)) == 1
        assert s.get(Article, fr).story_id is not None


def test_exact_copy_in_other_feeds_counts_as_independent_sources(story_rt: Runtime) -> None:
    """A word-for-word copy is stored once (a sighting per feed); each publisher still counts."""
    rt = story_rt
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/a/1")
    record_alerts(rt, now=NOW)
    t1, t2 = NOW + timedelta(hours=1), NOW + timedelta(hours=2)
    assert (
        add_article(
            rt,
            feed="daily",
            title=BASE_TITLE,
            summary=BASE,
            url="https://daily.example/copy",
            now=t1,
        )
        is None
    )
    assert record_alerts(rt, now=t1)["alerts_new"] == 0
    assert (
        add_article(
            rt,
            feed="gazette",
            title=BASE_TITLE,
            summary=BASE,
            url="https://gazette.example/copy",
            now=t2,
        )
        is None
    )
    rec = record_alerts(rt, now=t2)
    assert (rec["alerts_new"], rec["updates_new"]) == (1, 1)


def test_unflagged_articles_make_no_story(story_rt: Runtime) -> None:
    rt = story_rt
    add_article(
        rt,
        feed="wire",
        title="Football results",
        summary="The holders went through.",
        url="https://wire.example/f",
        score=0.1,
        regimes=(),
    )
    assert record_alerts(rt, now=NOW)["stories_new"] == 0
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Story)) == 0


def test_a_quiet_run_after_a_busy_one_evaluates_no_story_again(story_rt: Runtime) -> None:
    """A cycle stamps its sightings, verdicts and story evaluations with one clock reading; the next
    run with nothing new must not take those stories as changed (it re-evaluated every story of the
    busy cycle: 4.6 s of a quiet 1,000-feed cycle in bench/results/cycles-2026-12-07-idle.md)."""
    from pipeline.alerts.record import _changed_stories

    rt = story_rt
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/q/1")
    add_article(rt, feed="wire", title=OTHER_TITLE, summary=OTHER, url="https://wire.example/q/2")
    assert record_alerts(rt, now=NOW)["stories_new"] == 2
    with rt.sessions() as s:
        assert _changed_stories(s, NOW - timedelta(hours=48)) == set()
    # A new sighting of the story after its evaluation still makes it changed.
    later = NOW + timedelta(hours=1)
    add_article(
        rt,
        feed="daily",
        title=SYNDICATED_TITLE,
        summary=SYNDICATED,
        url="https://daily.example/q/9",
        now=later,
    )
    assert record_alerts(rt, now=later)["stories_joined"] == 1
    with rt.sessions() as s:
        assert _changed_stories(s, NOW - timedelta(hours=48)) == set()


def test_the_stories_of_one_run_are_tagged_in_one_batch_with_the_same_allegations(
    story_rt: Runtime,
) -> None:
    """The breach-kind tagger's per-call cost dominated a busy cycle's stories step; every story
    about to be alerted is now tagged in one call, and the allegations are those of one-by-one."""
    from pipeline.alerts.record import story_facts

    rt = story_rt
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/b/1")
    add_article(rt, feed="wire", title=OTHER_TITLE, summary=OTHER, url="https://wire.example/b/2")
    describer = rt.describer
    assert describer.tagger is not None
    calls: list[int] = []
    tagger = describer.tagger

    class Counting:
        def tag(self, texts):
            calls.append(len(texts))
            return tagger.tag(texts)

        def __getattr__(self, name):
            return getattr(tagger, name)

    describer.tagger = Counting()
    try:
        assert record_alerts(rt, now=NOW)["alerts_new"] == 2
    finally:
        describer.tagger = tagger
    assert calls == [2], calls  # one batch of both stories' texts, no call per story
    with rt.sessions() as s:
        alerts = s.scalars(select(Alert).order_by(Alert.id)).all()
        describer.prime([])  # forget the batch: describe one story at a time
        for alert in alerts:
            story = s.get(Story, alert.story_id)
            alone = describer.describe(story_facts(s, story))
            assert alert.details["allegation"] == alone
            assert alone["kinds"], alone


def _reference_facts(s, story: Story) -> tuple:
    """One story's facts read the slow, obvious way (a query per part), to check the batched read."""
    from pipeline.alerts.facts import _publisher, current_classifications
    from pipeline.store.schema import Feed, Sighting

    members = list(
        s.scalars(
            select(Article)
            .where(Article.story_id == story.id)
            .order_by(Article.first_seen_at, Article.id)
        )
    )
    lead = s.get(Article, story.lead_article_id)
    if lead not in members:
        members.insert(0, lead)
    current = current_classifications(s, [m.id for m in members])
    scored = [c for c in current.values() if c.flagged] or list(current.values())
    best = max(scored, key=lambda c: (c.score, -c.id))
    sources = s.execute(
        select(Sighting.article_id, Sighting.feed_id, Feed.name, Sighting.url)
        .join(Feed, Feed.id == Sighting.feed_id)
        .where(Sighting.article_id.in_([m.id for m in members]))
        .order_by(Sighting.seen_at, Sighting.id)
    ).all()
    return (
        lead.id,
        [m.id for m in members],
        sorted(current),
        best.id,
        [tuple(r) for r in sources],
        len({_publisher(r.url, r.feed_id) for r in sources}),
    )


def test_stories_read_and_evaluated_in_chunks_equal_one_by_one(
    story_rt: Runtime, monkeypatch
) -> None:
    """With chunks of two, a busy cycle groups the same stories, raises the same alerts, and every
    story's batched facts equal those read story by story (members, lead, sources in order)."""
    import pipeline.alerts.facts as facts
    import pipeline.alerts.record as record
    from pipeline.alerts.facts import story_facts, story_facts_many

    monkeypatch.setattr(record, "_CHUNK", 2)  # grouping and evaluating
    monkeypatch.setattr(facts, "_CHUNK", 2)  # reading facts
    rt = story_rt
    first = add_article(
        rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/c/1"
    )
    other = add_article(
        rt, feed="wire", title=OTHER_TITLE, summary=OTHER, url="https://wire.example/c/2"
    )
    later = NOW + timedelta(minutes=5)
    copy = add_article(
        rt,
        feed="daily",
        title=SYNDICATED_TITLE,
        summary=SYNDICATED,
        url="https://daily.example/c",
        now=later,
    )
    edited = add_article(
        rt,
        feed="gazette",
        title=BASE_TITLE + ", images show",
        summary=EDITED,
        url="https://gazette.example/c",
        now=later,
    )
    fr = add_article(
        rt,
        feed="journal",
        title=FRENCH_TITLE,
        summary=FRENCH,
        url="https://journal.example/c",
        lang="fr",
        now=later,
    )
    distinct = (
        (
            "Cargo plane with rifles lands in Benghazi despite arms embargo",
            "Investigators traced crates of assault rifles flown from abroad to an eastern Libyan airbase.",
        ),
        (
            "Dhow seized off Oman carried missile parts bound for the Houthis",
            "Navy boarding team found guidance kits and engines hidden under fertiliser sacks.",
        ),
        (
            "Coal from Nampho unloaded at a southern port, satellite images suggest",
            "Commercial imagery shows a bulk carrier taking on anthracite before switching off its tracker.",
        ),
    )
    singles = [
        add_article(
            rt, feed="wire", title=t, summary=d, url=f"https://wire.example/c/s{n}", now=later
        )
        for n, (t, d) in enumerate(distinct)
    ]
    rec = record_alerts(rt, now=later)
    assert rec["stories_joined"] == 3  # the copy, the edit and the translation join the first story
    assert rec["stories_new"] == 2 + len(singles)
    assert rec["alerts_new"] == 2 + len(singles)
    with rt.sessions() as s:
        story_of = dict(s.execute(select(Article.id, Article.story_id)).all())
        assert story_of[first] == story_of[copy] == story_of[edited] == story_of[fr]
        assert len({story_of[first], story_of[other], *(story_of[x] for x in singles)}) == 5
        stories = list(s.scalars(select(Story).order_by(Story.id)))
        many = story_facts_many(s, stories)
        assert sorted(many) == [st.id for st in stories]
        for st in stories:
            got = many[st.id]
            alone = story_facts(s, st)
            assert (got.lead.id, [m.id for m in got.members], got.best.id) == (
                alone.lead.id,
                [m.id for m in alone.members],
                alone.best.id,
            )
            assert (
                got.lead.id,
                [m.id for m in got.members],
                sorted(got.current),
                got.best.id,
                [(r.article_id, r.feed_id, r.feed_name, r.url) for r in got.sources],
                got.independent_sources,
            ) == _reference_facts(s, st)
        big = many[story_of[first]]
        assert len(big.members) == 4 and big.independent_sources == 4


def test_a_restored_fingerprint_is_the_computed_one() -> None:
    """A print stored as bytes and anchors gives the same similarity to every other fingerprint,
    and the same LSH candidates, as the fingerprint computed from the text."""
    from pipeline.alerts.stories import print_scheme, restore, signature_bytes

    texts = [BASE, SYNDICATED, EDITED, OTHER, FRENCH, ""]
    prints = [
        fingerprint(StoryText(key=n, title="", text=t, lang="fr" if t is FRENCH else "en"))
        for n, t in enumerate(texts)
    ]
    restored = [restore(p.item, signature_bytes(p), p.anchors) for p in prints]
    assert restored[-1].minhash is None and signature_bytes(prints[-1]) is None
    for a, ra in zip(prints, restored, strict=True):
        for b in prints:
            assert similarity(ra, b) == similarity(a, b)
    index, again = StoryIndex(0.5), StoryIndex(0.5)
    for p, r in zip(prints[:3], restored[:3], strict=True):
        index.add(p, 1)
        again.add(r, 1)
    for p in prints:
        assert list(index.candidates(p)) == list(again.candidates(p))
    assert print_scheme([1718]) == print_scheme([1718, 1718]) != print_scheme([1718, 2231])


def test_the_story_window_is_indexed_from_stored_prints(story_rt: Runtime, monkeypatch) -> None:
    """Each run fingerprints only what is new: members of the window come from their stored prints,
    an article joins its story all the same, and a print of an older revision or another scheme is
    computed again (and stored) once."""
    import pipeline.alerts.record as record
    from pipeline.store.schema import StoryPrint

    computed: list[int] = []
    real = record.fingerprint

    def counting(item, **kwargs):
        computed.append(item.key)
        return real(item, **kwargs)

    monkeypatch.setattr(record, "fingerprint", counting)
    rt = story_rt
    first = add_article(
        rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/p/1"
    )
    other = add_article(
        rt, feed="wire", title=OTHER_TITLE, summary=OTHER, url="https://wire.example/p/2"
    )
    assert record_alerts(rt, now=NOW)["stories_new"] == 2
    assert sorted(computed) == sorted([first, other])
    with rt.sessions() as s:
        assert set(s.scalars(select(StoryPrint.article_id))) == {first, other}

    computed.clear()
    later = NOW + timedelta(hours=1)
    copy = add_article(
        rt,
        feed="daily",
        title=SYNDICATED_TITLE,
        summary=SYNDICATED,
        url="https://daily.example/p",
        now=later,
    )
    rec = record_alerts(rt, now=later)
    assert (rec["stories_joined"], rec["stories_new"]) == (1, 0)
    assert computed == [copy]  # the window's two members came from their prints
    with rt.sessions() as s:
        story_of = dict(s.execute(select(Article.id, Article.story_id)).all())
        assert story_of[copy] == story_of[first] != story_of[other]

    # An edited member (a new revision) and a new scheme: recomputed once, then served again.
    with rt.sessions.begin() as s:
        s.get(Article, other).revision = 2
    computed.clear()
    later2 = NOW + timedelta(hours=2)
    edited = add_article(
        rt,
        feed="gazette",
        title=BASE_TITLE + ", images show",
        summary=EDITED,
        url="https://gazette.example/p",
        now=later2,
    )
    assert record_alerts(rt, now=later2)["stories_joined"] == 1
    assert sorted(computed) == sorted([other, edited])
    with rt.sessions() as s:
        assert s.get(StoryPrint, other).revision == 2
    monkeypatch.setattr(record, "print_scheme", lambda ignore: "another-scheme")
    computed.clear()
    later3 = NOW + timedelta(hours=3)
    add_article(
        rt,
        feed="journal",
        title=FRENCH_TITLE,
        summary=FRENCH,
        url="https://journal.example/p",
        lang="fr",
        now=later3,
    )
    assert record_alerts(rt, now=later3)["stories_joined"] == 1
    assert len(computed) == 5  # four members recomputed for the new scheme, and the new article
    with rt.sessions() as s:
        assert set(s.scalars(select(StoryPrint.scheme))) == {"another-scheme"}


def test_fingerprints_share_the_permutations_a_fresh_minhash_would_generate() -> None:
    """The shared permutations are the ones MinHash(num_perm, seed) generates: the same signature."""
    from datasketch import MinHash

    from pipeline.alerts.stories import NUM_PERM, SEED

    a = fingerprint(StoryText(key=1, title="", text=BASE))
    b = fingerprint(StoryText(key=2, title="", text=OTHER))
    assert a.minhash is not None and b.minhash is not None
    assert a.minhash.permutations is b.minhash.permutations  # held once
    fresh = MinHash(num_perm=NUM_PERM, seed=SEED)
    fresh.update_batch([s.encode("utf-8") for s in sorted(shingles(BASE))])
    assert (fresh.hashvalues == a.minhash.hashvalues).all()


def test_the_index_finds_the_candidates_datasketch_lsh_finds_and_keeps_no_text() -> None:
    """The index's bands give the candidates datasketch's MinHashLSH gives for the same threshold,
    in the members' order, and it keeps its members without their text."""
    import random

    from datasketch import MinHashLSH

    from pipeline.alerts.stories import NUM_PERM

    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(300)]
    base = [rng.sample(vocab, 40) for _ in range(30)]
    texts = []
    for n in range(400):  # variants of 30 texts: many pairs near and across the LSH threshold
        words_ = list(base[n % 30])
        for _ in range(rng.randrange(0, 25)):
            words_[rng.randrange(len(words_))] = rng.choice(vocab)
        texts.append(" ".join(words_))
    prints = [fingerprint(StoryText(key=n, title=t[:20], text=t)) for n, t in enumerate(texts)]
    index = StoryIndex(0.5)
    reference = MinHashLSH(threshold=0.3, num_perm=NUM_PERM)  # StoryIndex retrieves at 0.6 x 0.5
    for p in prints[:300]:
        index.add(p, p.item.key)
        reference.insert(p.item.key, p.minhash)
    for p in prints:
        lexical = [k for k in index.candidates(p) if k in reference.query(p.minhash)]
        assert set(index.candidates(p)) == set(reference.query(p.minhash))
        assert lexical == sorted(lexical)  # the members' order (keys were added in order)
    sizes = [len(index.candidates(p)) for p in prints]
    assert min(sizes) < max(sizes) and sum(n > 1 for n in sizes) > 50  # not a vacuous comparison
    assert all(fp.item.text == "" and fp.item.title == "" for fp, _ in index._members.values())
    assert all(p.item.text for p in prints)  # the caller's fingerprints are untouched
