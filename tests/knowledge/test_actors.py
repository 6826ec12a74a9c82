"""Who and where (pure): actors from actors.yaml and the regimes' aliases in every supported language,
UN-listed names and vessels, directions only where the words give one, places, and strict loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

from pipeline.alerts.describe import Describer
from pipeline.errors import ConfigError
from pipeline.knowledge.actors import find_vessels, load_actors, parse_actors
from pipeline.knowledge.designations import load_consolidated_list
from pipeline.knowledge.gazetteer import normalise
from pipeline.knowledge.places import load_places, parse_places
from pipeline.knowledge.regimes import load_regimes

CONFIG = ROOT / "config"
UN_LIST = ROOT / "tests" / "fixtures" / "un_consolidated_sample.xml"


@pytest.fixture(scope="module")
def describer() -> Describer:
    places = load_places(CONFIG / "places.yaml")
    actors = load_actors(CONFIG / "actors.yaml", CONFIG / "regimes.yaml", CONFIG / "places.yaml")
    return Describer(
        tagger=None, actors=actors, places=places, designations=load_consolidated_list(UN_LIST)
    )


def names(describer: Describer, text: str, lang: str = "en") -> set[str]:
    return {a["name"] for a in describer.describe_texts([(text, lang)]).actors}


# ------------------------------------------------------------------------------------- aliases


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [
        ("en", "Pyongyang shipped shells to Moscow.", {"North Korea", "Russia"}),
        ("fr", "La Corée du Nord a livré des obus à la Russie.", {"North Korea", "Russia"}),
        ("es", "Corea del Norte envió proyectiles a Rusia.", {"North Korea", "Russia"}),
        ("ru", "КНДР передала России баллистические ракеты.", {"North Korea", "Russia"}),
        ("ar", "زودت إيران الحوثيين بصواريخ.", {"Iran", "Houthis"}),
        ("ko", "북한이 러시아에 포탄을 보냈다.", {"North Korea", "Russia"}),
        ("zh", "朝鲜向俄罗斯提供了弹道导弹。", {"North Korea", "Russia"}),
        (
            "en",
            "Haftar's forces received drones from the UAE.",
            {"Khalifa Haftar", "United Arab Emirates"},
        ),
        ("fr", "Les houthistes ont reçu des missiles de Téhéran.", {"Houthis", "Iran"}),
    ],
)
def test_actors_in_every_language(
    describer: Describer, lang: str, text: str, expected: set[str]
) -> None:
    assert names(describer, text, lang) == expected


def test_regime_aliases_name_the_regime_principal(tmp_path: Path) -> None:
    """An alias added to regimes.yaml only is found, as the regime's principal actor."""
    for name in ("actors.yaml", "places.yaml"):
        shutil.copy(CONFIG / name, tmp_path / name)
    data = yaml.safe_load((CONFIG / "regimes.yaml").read_text(encoding="utf-8"))
    data["regimes"]["dprk"]["aliases"].append("Hermit Kingdom")
    (tmp_path / "regimes.yaml").write_text(
        yaml.safe_dump(data, allow_unicode=True), encoding="utf-8"
    )
    book = load_actors(
        tmp_path / "actors.yaml", tmp_path / "regimes.yaml", tmp_path / "places.yaml"
    )
    assert [m.actor.name for m in book.find("The Hermit Kingdom fired a missile.")] == [
        "North Korea"
    ]


def test_flags_of_convenience_and_weapon_names_are_not_actors(describer: Describer) -> None:
    text = "A Panama-flagged tanker met a Hwasong-carrying ship; 파나마 선적 유조선"
    assert names(describer, text) == set()


def test_un_listed_names_and_vessels(describer: Describer) -> None:
    allegation = describer.describe_texts(
        [("The tanker HAO FAN 6 loaded coal at Nampo for Jimmy Cherizier's allies.", "en")]
    )
    listed = {a["name"]: a for a in allegation.actors}
    assert listed["JIMMY CHERIZIER"]["listed"] and listed["JIMMY CHERIZIER"]["type"] == "person"
    assert any(a["listed"] and a["type"] == "vessel" for a in allegation.actors)
    assert allegation.places == ("Nampo",)


@pytest.mark.parametrize(
    ("text", "vessels"),
    [
        ("South Korea seized the Hong Kong-flagged Lighthouse Winmore.", ["Lighthouse Winmore"]),
        ("the tanker loaded at Yeosu, and the tanker Koti sailed", ["Koti"]),
        ("the North Korean tanker Sam Jong 2 in international waters", ["Sam Jong 2"]),
        ("M/V Wise Honest, a bulk carrier", ["Wise Honest"]),
        ("USS Sirocco seized the dhow", []),
        ("韩国扣押 Lighthouse Winmore号", ["Lighthouse Winmore"]),
    ],
)
def test_vessel_names(text: str, vessels: list[str]) -> None:
    assert [v.text for v in find_vessels(text)] == vessels


# ----------------------------------------------------------------------------------- direction


@pytest.mark.parametrize(
    ("lang", "text", "flow"),
    [
        (
            "en",
            "North Korea has shipped 1,000 containers of munitions to Russia, officials said.",
            ("North Korea", "Russia"),
        ),
        (
            "en",
            "Moscow is buying millions of artillery shells from Pyongyang.",
            ("North Korea", "Russia"),
        ),
        ("en", "Russia is turning to North Korea for artillery rounds.", ("North Korea", "Russia")),
        ("en", "Iran supplied the Houthis with drones.", ("Iran", "Houthis")),
        ("en", "Arms from Iran to the Houthis were seized.", ("Iran", "Houthis")),
        ("en", "The Iran-to-Houthi pipeline is busy.", ("Iran", "Houthis")),
        (
            "fr",
            "Washington accuse Pyongyang de livrer des obus à Moscou.",
            ("North Korea", "Russia"),
        ),
        (
            "es",
            "Corea del Norte envió contenedores de material militar a Rusia.",
            ("North Korea", "Russia"),
        ),
        ("ru", "КНДР передала России баллистические ракеты.", ("North Korea", "Russia")),
        ("ru", "Россия закупает у КНДР снаряды.", ("North Korea", "Russia")),
        ("ar", "أرسلت كوريا الشمالية صواريخ إلى روسيا", ("North Korea", "Russia")),
        ("ar", "نقل أسلحة من إيران إلى الحوثيين", ("Iran", "Houthis")),
        (
            "ko",
            '백악관 "북한, 러시아에 컨테이너 1천 개 넘는 군수품 넘겨"',
            ("North Korea", "Russia"),
        ),
        ("ko", "러시아가 북한에서 포탄을 구매했다", ("North Korea", "Russia")),
        ("zh", "朝鲜近期向俄罗斯提供了弹道导弹及发射装置", ("North Korea", "Russia")),
    ],
)
def test_direction_where_the_words_give_one(
    describer: Describer, lang: str, text: str, flow: tuple[str, str]
) -> None:
    assert describer.describe_texts([(text, lang)]).flows == (flow,)


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "The United States and South Korea condemned North Korea's launch."),
        ("en", "Russia and North Korea signed a partnership treaty."),
        ("fr", "Le ministre de la Défense de la Russie a parlé à l'Iran."),
        ("zh", "美称俄罗斯使用朝鲜提供的弹道导弹"),
    ],
)
def test_no_direction_without_words_for_it(describer: Describer, lang: str, text: str) -> None:
    assert describer.describe_texts([(text, lang)]).flows == ()


def test_routes_between_places(describer: Describer) -> None:
    allegation = describer.describe_texts([("Containers moved from Rajin to Dunai by ship.", "en")])
    assert allegation.routes == (("Rajin", "Dunai"),) and allegation.places == ("Rajin", "Dunai")
    korean = describer.describe_texts([("컨테이너는 나진항에서 러시아로 옮겨졌다", "ko")])
    assert korean.routes == (("Rajin", "Russia"),)


# -------------------------------------------------------------------------------------- places


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Tankers loaded at Vostochny.", "Vostochny (port)"),
        ("Kim met Putin at the Vostochny Cosmodrome.", "Vostochny Cosmodrome"),
        ("나진항에서 선적", "Rajin"),
        ("в порту Раджин", "Rajin"),
        ("罗津港", "Rajin"),
        ("ميناء راجين", "Rajin"),
        ("des navires en mer Rouge", "Red Sea"),
        ("en el mar Rojo", "Red Sea"),
        ("в Красном море", "Red Sea"),
        ("홍해에서", "Red Sea"),
        ("在红海", "Red Sea"),
        ("في البحر الأحمر", "Red Sea"),
        ("trains crossing at Tumangang", "Tumangang–Khasan rail crossing"),
        ("ships off Hodeidah and in the Bab el-Mandeb", "Hodeidah"),
        ("a dhow in the Gulf of Aden", "Gulf of Aden"),
        ("transfers in the East China Sea", "East China Sea"),
        ("sailing from Dandong", "Dandong"),
        ("Port Sudan", "Port Sudan"),
    ],
)
def test_places_in_every_language(text: str, place: str) -> None:
    book = load_places(CONFIG / "places.yaml")
    assert book.find(normalise(text))[0][0].name == place


# ------------------------------------------------------------------------------------- loading


def _places_data() -> dict:
    return yaml.safe_load((CONFIG / "places.yaml").read_text(encoding="utf-8"))


def _actors_data() -> dict:
    return yaml.safe_load((CONFIG / "actors.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["places"][0].update(harbour="x"), r"places\[0\]\.harbour: unknown key"),
        (lambda d: d["places"][0].update(type="castle"), r"places\[0\] \(rajin\)\.type: 'castle'"),
        (
            lambda d: d["places"][1]["aliases"].append("Rajin"),
            r"'Rajin' is already an alias of rajin",
        ),
        (lambda d: d["places"].append(dict(d["places"][0])), r"duplicate id 'rajin'"),
        (lambda d: d["places"][0].update(name=""), r"\.name: must be a non-empty string"),
    ],
)
def test_places_file_is_strict(change, message: str) -> None:
    data = _places_data()
    change(data)
    with pytest.raises(ConfigError, match=rf"places\.yaml: .*{message}"):
        parse_places(data)


def test_places_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the places file"):
        load_places(tmp_path / "places.yaml")
    assert load_places(tmp_path / "places.yaml", missing_ok=True).find("Rajin") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["actors"][0].update(colour="red"), r"actors\[0\]\.colour: unknown key"),
        (lambda d: d["actors"][0].update(type="planet"), r"\(north-korea\)\.type: 'planet'"),
        (
            lambda d: d["actors"][0].update(regime="atlantis"),
            r"\.regime: 'atlantis' is not a regime",
        ),
        (lambda d: d["actors"][0].pop("principal"), r"regime dprk has no principal actor"),
        (
            lambda d: d["actors"][1]["aliases"].append("DPRK"),
            r"'DPRK' is already an alias of north-korea",
        ),
        (lambda d: d["not_actors"].append("Pyongyang"), r"'Pyongyang' is also under not_actors"),
        (
            lambda d: d["actors"][1].update(principal=True, regime="dprk"),
            r"dprk already has north-korea",
        ),
    ],
)
def test_actors_file_is_strict(change, message: str) -> None:
    data = _actors_data()
    if "Pyongyang" not in str(data["actors"][0]["aliases"]):
        data["actors"][0]["aliases"].append("Pyongyang")
    change(data)
    with pytest.raises(ConfigError, match=rf"actors\.yaml: .*{message}"):
        parse_actors(
            data, load_regimes(CONFIG / "regimes.yaml"), load_places(CONFIG / "places.yaml")
        )
