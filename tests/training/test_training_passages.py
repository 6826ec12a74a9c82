"""Training the whole-article model: which texts the base model learns from (the breach passages of
positive articles found out of fold), and the operating point limited by ordinary-news false alarms
(pipeline.training.passages, pipeline.training.evaluate.best_f1_threshold)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipeline.classify.passages import PassageSettings
from pipeline.training.evaluate import best_f1_threshold
from pipeline.training.passages import (
    base_examples,
    oof_features,
    segments_of,
    with_breach_passages,
)
from pipeline.training.train import CANDIDATES, grouped_folds

BREACHES = [
    "North Korea shipped artillery shells and ballistic missiles to Russia by rail through Rajin.",
    "A tanker transferred refined petroleum to a North Korean vessel off Nampo at night.",
    "Coal from Nampo was unloaded in a Chinese port under false papers despite the UN ban.",
    "Anti-tank missiles bound for the Houthis were seized from a dhow in the Arabian Sea.",
    "The UN Panel of Experts found rifles and ammunition reaching militias in Darfur.",
    "Weapons flown into Libya in breach of the arms embargo, UN monitors said.",
    "North Korean workers kept earning money on building sites in Russia despite the ban.",
    "A designated shipping company moved money through a bank in Dandong, UN experts say.",
]
DIPLOMACY = [
    "The two leaders toasted their friendship at a banquet in the capital.",
    "Officials discussed trade, tourism and a new bridge across the river.",
    "The minister praised the talks as warm and constructive.",
    "A joint statement promised cultural exchanges and student visits.",
    "The delegation visited a school and a textile factory on the second day.",
    "Both sides agreed to meet again next year and to open a new air route.",
]
ORDINARY = [
    "Researchers report a new species of frog in the rainforest.",
    "The central bank left interest rates unchanged on Thursday.",
    "The home side won the cup final after extra time.",
    "Heavy rain is expected across the north this weekend.",
]


def _item(
    i: int, label: int, *, style: str = "wire", body: str = "", kind: str = "x", title: str = ""
) -> dict[str, Any]:
    return {
        "id": f"t-{i:03d}",
        "title": title or f"Report {i}",
        "summary": "",
        "body": body,
        "label": label,
        "style": style,
        "kind": kind,
        "event_id": f"ev-{i}",
    }


def _article(i: int, label: int, breach: str | None) -> dict[str, Any]:
    paragraphs = [" ".join(DIPLOMACY[(i + k) % len(DIPLOMACY)] for k in range(3)) for _ in range(5)]
    if breach:
        paragraphs[3] = breach  # the breach in paragraph four
    return _item(i, label, style="article", body="\n\n".join(paragraphs), title=f"Summit day {i}")


def _corpus() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n in range(48):
        items.append(_item(len(items), 1, title=BREACHES[n % len(BREACHES)]))
        items.append(_item(len(items), 0, title=DIPLOMACY[n % len(DIPLOMACY)]))
        items.append(_item(len(items), 0, title=ORDINARY[n % len(ORDINARY)], kind="everyday_news"))
    for n in range(12):
        items.append(_article(len(items), 1, BREACHES[n % len(BREACHES)]))
        items.append(_article(len(items), 0, None))
    return items


def test_labelled_examples_are_short_items_and_every_part_of_negative_articles() -> None:
    items = _corpus()
    settings = PassageSettings()
    base = base_examples(items, settings)
    from_positive_articles = [
        o for o in base.owner if items[o]["style"] == "article" and items[o]["label"] == 1
    ]
    assert from_positive_articles == []  # their passages are not labelled
    negative_article = next(
        i for i, it in enumerate(items) if it["style"] == "article" and not it["label"]
    )
    rows = np.flatnonzero(base.owner == negative_article)
    assert len(rows) > 1 and (base.labels[rows] == 0).all()
    assert base.domain[rows].all()  # summit language is domain language
    everyday = np.flatnonzero([items[o]["kind"] == "everyday_news" for o in base.owner])
    assert not base.domain[everyday].any()


def test_breach_passages_are_found_out_of_fold_and_learned_as_positives() -> None:
    items = _corpus()
    settings = PassageSettings()
    labels = np.asarray([it["label"] for it in items])
    splits = grouped_folds(labels, [it["event_id"] for it in items], 3)
    labelled = base_examples(items, settings)
    first = oof_features(
        CANDIDATES["tfidf-word-lr"].tfidf, items, segments_of(items, settings), labelled, splits
    )
    base = with_breach_passages(labelled, items, first.top_texts, count=1)
    added = np.arange(len(labelled.texts), len(base.texts))
    positives = [i for i, it in enumerate(items) if it["style"] == "article" and it["label"]]
    assert sorted(base.owner[added].tolist()) == positives
    assert (base.labels[added] == 1).all() and base.domain[added].all()
    # The passage found in every positive article is the one that carries its breach.
    for row in added:
        item = items[base.owner[row]]
        breach = item["body"].split("\n\n")[3]
        assert breach in base.texts[row], (item["id"], base.texts[row])
    # Two per article when asked; the labelled examples are left as they were.
    two = with_breach_passages(labelled, items, first.top_texts, count=2)
    assert len(two.texts) == len(labelled.texts) + 2 * len(positives)
    assert two.texts[: len(labelled.texts)] == labelled.texts


def test_the_threshold_keeps_ordinary_news_false_alarms_under_the_limit() -> None:
    rng = np.random.default_rng(0)
    pos = rng.uniform(0.3, 1.0, 200)
    domain_neg = rng.uniform(0.0, 0.5, 200)
    ordinary = np.r_[
        rng.uniform(0.0, 0.2, 990), rng.uniform(0.35, 0.6, 10)
    ]  # 10 per 1,000 score high
    probs = np.r_[pos, domain_neg, ordinary]
    labels = np.r_[np.ones(200), np.zeros(1200)].astype(int)
    is_ordinary = np.r_[np.zeros(400, bool), np.ones(1000, bool)]

    free, _ = best_f1_threshold(labels, probs)
    limited, f1 = best_f1_threshold(labels, probs, ordinary=is_ordinary, max_ordinary_per_1000=3.0)
    rate = lambda t: (ordinary >= t).mean() * 1000  # noqa: E731
    assert rate(free) > 3.0  # the plain best-F1 point would flag more
    assert rate(limited) <= 3.0 and limited > free
    assert 0 < f1 <= 1
    # No limit given: the mask changes nothing.
    assert best_f1_threshold(labels, probs, ordinary=is_ordinary) == best_f1_threshold(
        labels, probs
    )


def test_an_unreachable_limit_falls_back_to_the_best_f1_threshold() -> None:
    labels = np.asarray([1, 1, 0, 0])
    probs = np.asarray([0.6, 0.7, 0.1, 0.9])  # the ordinary item outscores every positive
    ordinary = np.asarray([False, False, False, True])
    assert best_f1_threshold(
        labels, probs, ordinary=ordinary, max_ordinary_per_1000=0.0
    ) == best_f1_threshold(labels, probs)


@pytest.mark.parametrize("value", ["-1", "lots", "inf"])
def test_train_rejects_a_bad_false_alarm_limit(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--max-everyday-alarms", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--max-everyday-alarms" in err and value in err
