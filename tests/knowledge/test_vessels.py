"""Vessel names in Korean, Chinese and Russian text (pure): found after a ship word or in quotes, in
their own script or in Latin letters, romanised for the English facts line (the original kept as the
mention), and common nouns, satellites and resolution numbers that end like a ship name left out."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from helpers import ROOT

from pipeline.alerts.allegation import Allegation
from pipeline.alerts.describe import Describer
from pipeline.alerts.views import AlertView
from pipeline.deliver.render import facts_line
from pipeline.knowledge.actors import find_vessels, load_actors, romanise
from pipeline.knowledge.gazetteer import normalise
from pipeline.knowledge.places import load_places

CONFIG = ROOT / "config"
NON_LATIN = re.compile(r"[\u0400-\u04ff\u4e00-\u9fff\uac00-\ud7af]")


@pytest.fixture(scope="module")
def describer() -> Describer:
    places = load_places(CONFIG / "places.yaml")
    actors = load_actors(CONFIG / "actors.yaml", CONFIG / "regimes.yaml", CONFIG / "places.yaml")
    return Describer(tagger=None, actors=actors, places=places)


def vessels(text: str) -> list[tuple[str, str]]:
    return [(v.text, v.actor.name) for v in find_vessels(normalise(text))]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Korean: Hangul names before 호, after a ship word or in quotes; Latin names too
        ("북한 유조선 천마산호가 공해상에서 석유를 넘겨받았다.", [("천마산", "Cheon Ma San")]),
        ("북한 선박 '천마산'호는 남포로 향했다.", [("천마산", "Cheon Ma San")]),
        ("화물선 금진강3호가 입항했다.", [("금진강3", "Geum Jin Gang 3")]),
        ("유조선 천마산 2호", [("천마산 2", "Cheon Ma San 2")]),
        ("천마산호(유조선)는 환적 뒤 사라졌다.", [("천마산", "Cheon Ma San")]),
        ("해경은 유조선 Koti를 나포했다.", [("Koti", "Koti")]),
        ("해경은 Lighthouse Winmore호를 억류했다.", [("Lighthouse Winmore", "Lighthouse Winmore")]),
        # Chinese: names before 号, after a ship word or in quotes before 号
        ("朝鲜籍油轮“天马山”号在公海与外国船只转运石油。", [("天马山", "Tian Ma Shan")]),
        ("“天马山”号油轮关闭了应答器。", [("天马山", "Tian Ma Shan")]),
        ("一艘油轮天马山号驶入南浦港。", [("天马山", "Tian Ma Shan")]),
        ("货船 Wise Honest 被印度尼西亚扣押。", [("Wise Honest", "Wise Honest")]),
        # Russian: «name» after a ship word in any case, or a Latin name
        ("Танкер «Коти» передал нефтепродукты.", [("Коти", "Koti")]),
        ("на борту сухогруза «Сам Чжон 2» нашли уголь", [("Сам Чжон 2", "Sam Chzhon 2")]),
        ("судно под названием «Вайз Онест» задержано", [("Вайз Онест", "Vayz Onest")]),
        ("Южная Корея задержала танкер Koti в порту.", [("Koti", "Koti")]),
    ],
)
def test_vessel_names_in_korean_chinese_and_russian(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert vessels(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "선박 식별번호를 끄고 항해했다.",  # 번호: "number"
        "선박 보호를 위해 호위함을 보냈다.",  # 보호: "protection"
        "북한은 정찰위성 '만리경 1호'를 발사했다.",  # a satellite, 호 inside the quotes
        "호주 선박이 입항했다.",  # 호주: Australia
        "安理会第2397号决议禁止船对船转运。",  # resolution 2397
        "船只违反第5号规定。",
        "中国发射了“嫦娥五号”探测器。",  # a spacecraft, 号 inside the quotes
        "船只关闭了信号。",  # 信号: signal
        "судно КНДР вошло в порт",  # a state after a ship word, not a name
        "танкер вышел из порта",
    ],
)
def test_words_that_only_look_like_ship_names(text: str) -> None:
    assert vessels(text) == []


def test_romanise() -> None:
    assert romanise("천마산") == "Cheon Ma San"
    assert romanise("금진강 3") == "Geum Jin Gang 3"
    assert romanise("天马山") == "Tian Ma Shan"
    assert romanise("Вайз Онест") == "Vayz Onest"
    assert romanise("Wise Honest") == "Wise Honest"


@pytest.mark.parametrize(
    ("lang", "text", "vessel", "also"),
    [
        (
            "ko",
            "북한 유조선 천마산호가 공해상에서 선박 간 환적으로 석유를 넘겨받은 뒤 남포항으로 들어갔다.",
            "Cheon Ma San",
            "Where: Nampo",
        ),
        (
            "ko",
            "해경은 파나마 선적 유조선 Lighthouse Winmore호를 여수항에서 억류했다.",
            "Lighthouse Winmore",
            "Where: Yeosu",
        ),
        ("zh", "朝鲜籍油轮“天马山”号在公海与一艘外国油轮进行了船对船转运。", "Tian Ma Shan", ""),
        ("ru", "Южная Корея задержала танкер «Коти» за передачу топлива КНДР.", "Koti", ""),
    ],
)
def test_vessels_reach_the_english_facts_line(
    describer: Describer, lang: str, text: str, vessel: str, also: str
) -> None:
    allegation = describer.describe_texts([(text, lang)])
    assert {"name": vessel, "type": "vessel", "listed": False} in [
        dict(a) for a in allegation.actors
    ]
    line = facts_line(_view(allegation, lang))
    assert vessel in line.split("Who: ", 1)[1] and also in line
    assert not NON_LATIN.search(line)


def _view(allegation: Allegation, lang: str) -> AlertView:
    t = datetime(2026, 3, 15, tzinfo=UTC)
    return AlertView(
        alert_id=1, title="t", summary="s", url=None, lang=lang, first_seen_at=t,
        published_at=t, score=0.9, threshold=0.5, model_version="m", severity="high",
        severity_reason="r", regime_keys=("dprk",), allegation=allegation,
    )  # fmt: skip
