"""Whole articles: segmentation into head, whole text and passages, the combiner's features, and the
shipped model on articles whose breach sits in one paragraph (pipeline.classify.passages, model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import NOW, ROOT

from pipeline.classify.model import doc_of, sparse_features
from pipeline.classify.passages import (
    FEATURE_NAMES,
    SCRIPT_FEATURES,
    Doc,
    Margins,
    PassageSettings,
    features,
    flatten,
    script_features,
    segment,
    split_sentences,
    thin,
)

ARTICLES = ROOT / "tests" / "fixtures" / "articles"


def article(name: str) -> Doc:
    data = json.loads((ARTICLES / f"{name}.json").read_text(encoding="utf-8"))
    return Doc.of(data["title"], data["summary"], data["body"])


def test_sentences_split_in_latin_cjk_and_arabic_scripts() -> None:
    text = "Le Conseil a voté. 中国表示反对。俄方否认。 북한은 부인했다. هل وصلت؟ نعم."
    assert split_sentences(text) == [
        "Le Conseil a voté.",
        "中国表示反对。",
        "俄方否认。",
        "북한은 부인했다.",
        "هل وصلت؟",
        "نعم.",
    ]


def test_head_whole_and_overlapping_passages_cover_the_body() -> None:
    body = " ".join(f"Sentence number {n} of the body." for n in range(1, 8))
    sg = segment(Doc.of("A title", "A summary.", body), PassageSettings(window=3, stride=2))
    assert sg.head == "A title A summary."
    assert sg.whole.startswith("A title A summary. Sentence number 1")
    assert sg.passages[0].startswith("Sentence number 1") and "number 3" in sg.passages[0]
    assert sg.passages[1].startswith("Sentence number 3")
    # The end of the body is always inside a passage, even when the stride skips past it.
    assert sg.passages[-1].endswith("Sentence number 7 of the body.")
    assert len(flatten([sg])) == 2 + len(sg.passages)


def test_an_item_without_a_body_gets_passages_over_its_summary() -> None:
    sg = segment(Doc.of("Title", "First point. Second point.", ""), PassageSettings())
    assert sg.passages == ("First point. Second point.",)


def test_passages_are_bounded_however_long_the_article() -> None:
    settings = PassageSettings(window=3, stride=2, max_passages=10, passage_chars=200)
    body = " ".join(f"Sentence {n} " + "word " * 400 + "." for n in range(500))
    sg = segment(Doc.of("T", "", body), settings)
    assert len(sg.passages) == 10
    assert all(len(u) <= 200 for u in sg.units)
    assert len(sg.units) <= 1 + (10 - 1) * 2 + 3


def test_headlines_are_thin_and_articles_are_not() -> None:
    settings = PassageSettings()
    assert thin(segment(Doc.of("Ship seized off Yemen with rifles aboard"), settings))
    assert not thin(segment(article("summit_with_arms"), settings))


def test_a_head_only_item_does_not_count_its_head_several_times() -> None:
    none = Margins(head=2.0, whole=2.0, passages=np.zeros(0))
    row = features(none, none)
    assert len(row) == len(FEATURE_NAMES)
    named = dict(zip(FEATURE_NAMES, row, strict=True))
    assert named["top1"] == named["top2"] == named["mean_top3"] == 0.0
    assert named["no_passages"] == 1.0
    with_passages = Margins(head=0.1, whole=0.2, passages=np.asarray([-1.0, 3.0, 0.5]))
    named = dict(zip(FEATURE_NAMES, features(with_passages, with_passages), strict=True))
    assert (named["top1"], named["top2"]) == (3.0, 0.5)
    assert named["mean_top3"] == pytest.approx(2.5 / 3)


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("北韩向俄罗斯运送炮弹和导弹，违反安理会决议。", "script_han"),
        ("북한이 러시아에 포탄과 미사일을 보냈다.", "script_hangul"),
        ("كوريا الشمالية أرسلت قذائف إلى روسيا", "script_arabic"),
        ("КНДР передала России снаряды и ракеты.", "script_cyrillic"),
        ("North Korea shipped shells to Russia.", None),
        ("北朝鮮がロシアに砲弾を送ったと政府が発表した。", None),  # Japanese: Han with kana
        ("Seoul says 북한 shipped shells to Russia by rail through Rajin last month.", None),
    ],
)
def test_the_script_columns_name_the_writing_system_of_the_text(
    text: str, script: str | None
) -> None:
    sg = segment(Doc.of(text), PassageSettings())
    row = dict(zip(SCRIPT_FEATURES, script_features(sg), strict=True))
    assert row == {name: float(name == script) for name in SCRIPT_FEATURES}
    margins = Margins(head=0.0, whole=0.0, passages=np.zeros(0))
    named = dict(zip(FEATURE_NAMES, features(margins, margins, sg), strict=True))
    assert {k: named[k] for k in SCRIPT_FEATURES} == row


def test_a_model_trained_before_the_script_columns_reads_only_its_own() -> None:
    from pipeline.classify.model import TextModel
    from pipeline.errors import ModelError

    old = TextModel(
        {}, "old", 0.5, {"a": 1.0, "b": 0.0}, {"combiner": {"features": list(FEATURE_NAMES[:9])}}
    )
    assert old._columns(old.metadata["combiner"]) == list(range(9))
    new = TextModel(
        {},
        "new",
        0.5,
        {"a": 1.0, "b": 0.0},
        {"combiner": {"features": [*FEATURE_NAMES, "emb_head"]}},
    )
    assert new._columns(new.metadata["combiner"]) == list(range(len(FEATURE_NAMES)))
    odd = TextModel(
        {}, "odd", 0.5, {"a": 1.0, "b": 0.0}, {"combiner": {"features": ["head", "moon_phase"]}}
    )
    with pytest.raises(ModelError, match=r"odd.*moon_phase"):
        odd._columns(odd.metadata["combiner"])


@pytest.fixture(scope="module")
def model():
    from pipeline.classify.registry import load_active

    m = load_active(ROOT / "models")
    if m.combiner is None:
        pytest.fail("the shipped model should be a whole-article (passages) model")
    return m


def test_span_sums_give_the_features_of_the_joined_text(model) -> None:
    """Hashing each unit once and summing over spans equals hashing the joined text (char n-grams
    within words, word unigrams; only word bigrams across a sentence boundary may differ)."""
    sg = segment(article("summit_with_arms"), model.passage_settings)
    summed = sparse_features(model.tfidf, [sg])
    direct = model.tfidf.named_steps["features"].transform(flatten([sg]))
    # Compare the char block exactly (columns after the word block).
    word = model.tfidf.named_steps["features"].transformer_list[0][1].named_steps["hash"].n_features
    diff = abs(summed[:, word:] - direct[:, word:]).max()
    assert diff < 1e-5
    rows = summed.shape[0]
    assert rows == 2 + len(sg.passages)


def test_a_breach_in_paragraph_four_flags_the_article_and_is_quoted(model) -> None:
    [score] = model.score_docs([article("summit_with_arms")])
    assert score.flagged, score.score
    assert score.confidence == "normal"
    quoted = " ".join(score.evidence.sentences)
    assert "Security Council" in quoted or "containers" in quoted or "shells" in quoted


def test_the_same_summit_without_arms_content_is_not_flagged(model) -> None:
    [score] = model.score_docs([article("summit_no_arms")])
    assert not score.flagged, score.score


def test_only_the_first_sentence_is_not_enough_and_says_little(model) -> None:
    doc = article("summit_with_arms")
    [score] = model.score_docs([Doc.of(doc.title, "", "")])
    assert not score.flagged
    assert score.confidence == "low"


def test_corpus_records_and_json_items_become_docs() -> None:
    doc = doc_of({"title": "T", "summary": None, "body": " B "})
    assert doc == Doc("T", "", "B")


# ------------------------------------------------------------------ through the pipeline's front doors


def _article_json(name: str) -> dict[str, str]:
    return json.loads((ARTICLES / f"{name}.json").read_text(encoding="utf-8"))


def test_score_command_flags_the_long_article_from_title_and_body() -> None:
    import subprocess
    import sys

    lines = []
    for name in ("summit_with_arms", "summit_no_arms"):
        data = _article_json(name)
        lines.append(json.dumps({"id": name, "title": data["title"], "body": data["body"]}))
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "score"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    results = {r["id"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert results["summit_with_arms"]["flagged"] is True
    assert results["summit_no_arms"]["flagged"] is False
    assert results["summit_with_arms"]["confidence"] == "normal"


def test_run_once_flags_an_article_carried_in_content_encoded(
    make_config, sqlite_url: str, tmp_path, mail_sink
) -> None:
    from xml.sax.saxutils import escape

    from sqlalchemy import select

    from pipeline.devtools.feedserver import serve_directory
    from pipeline.jobs import Runtime, run_once
    from pipeline.store.schema import Article, Classification

    folder = tmp_path / "feeds"
    folder.mkdir()
    items = []
    for n, name in enumerate(("summit_with_arms", "summit_no_arms")):
        data = _article_json(name)
        html = "".join(f"<p>{p}</p>" for p in data["body"].split("\n\n"))
        # The description repeats the title: only the full text in content:encoded tells.
        items.append(
            f"<item><title>{escape(data['title'])}</title>"
            f"<link>https://news.example/{name}</link><guid>g{n}</guid>"
            f"<description>{escape(data['title'])}</description>"
            f"<content:encoded><![CDATA[{html}]]></content:encoded></item>"
        )
    (folder / "long.xml").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        "<title>Long</title><link>https://news.example/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>\n",
        encoding="utf-8",
    )
    with serve_directory(folder) as server:
        config = make_config(
            database_url=sqlite_url,
            smtp_port=mail_sink.port,
            feeds=[{"id": "long", "url": f"{server.url}/long.xml", "full_text": "never"}],
        )
        with Runtime.open(config) as rt:
            run_once(rt, now=NOW, run_id="long")
            with rt.sessions() as s:
                flags = {
                    a.url: c.flagged
                    for a, c in s.execute(
                        select(Article, Classification).join(
                            Classification, Classification.article_id == Article.id
                        )
                    )
                }
    assert flags == {
        "https://news.example/summit_with_arms": True,
        "https://news.example/summit_no_arms": False,
    }
