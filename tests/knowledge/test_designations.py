"""The UN consolidated list: parsing, IMO numbers, regimes, matching and hostile files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.errors import SanctionsWatchError
from pipeline.knowledge import designations as dz
from pipeline.knowledge.designations import (
    Designation,
    DesignationIndex,
    DesignationListError,
    find_imo_numbers,
    is_valid_imo,
    load_consolidated_list,
    map_regime,
    parse_consolidated_list,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "un_consolidated_sample.xml"


@pytest.fixture(scope="module")
def index() -> DesignationIndex:
    return load_consolidated_list(FIXTURE)


def refs(index: DesignationIndex, text: str) -> set[str]:
    return {m.ref for m in index.match(text)}


def _xml(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<CONSOLIDATED_LIST>{body}</CONSOLIDATED_LIST>'.encode()


# --- parsing ------------------------------------------------------------------------------------


def test_fixture_parses_into_individuals_entities_and_vessels(index: DesignationIndex) -> None:
    kinds = [d.kind for d in index.designations]
    assert len(index) == 37
    assert (kinds.count("individual"), kinds.count("entity"), kinds.count("vessel")) == (20, 13, 4)


def test_individual_fields(index: DesignationIndex) -> None:
    d = index.get("KPi.034")  # REFERENCE_NUMBER is "KPi.034 " in the list: stripped
    assert d == Designation(
        ref="KPi.034",
        kind="individual",
        name="JO YONG CHOL",
        aliases=("Cho Yong Chol",),
        regime="dprk",
        listed_on="2016-11-30",
        imo=None,
        nationality=("Democratic People's Republic of Korea",),
        list_type="DPRK",
    )
    yemen = index.get("YEi.001")
    assert yemen is not None
    assert yemen.name == "ABD AL-KHALIQ AL-HOUTHI"  # FIRST..THIRD_NAME joined, spaces cleaned
    assert yemen.name_original_script == "عبدالخالق الحوثي"
    assert "عبدالخالق الحوثي" in yemen.aliases
    four = index.get("QDi.400")
    assert four is not None and four.name == "IYAD NAZMI SALIH KHALIL"  # FOURTH_NAME included


def test_alias_quality_low_is_kept_apart(index: DesignationIndex) -> None:
    d = index.get("QDi.031")
    assert d is not None
    assert "Abu Qatada Al-Filistini" in d.low_quality_aliases
    assert "Omar Mohammed Othman" in d.aliases
    assert "Omar Mohammed Othman" not in d.low_quality_aliases
    assert set(d.low_quality_aliases) <= set(d.aliases)


def test_alias_with_original_script_in_parentheses_is_split(index: DesignationIndex) -> None:
    d = index.get("QDi.279")
    assert d is not None
    assert "Abdelali Abou Dher" in d.aliases
    assert "عبد العالي ابو ذر" in d.aliases
    assert not any("(" in a for a in d.aliases)


def test_entity_acronym_in_parentheses_becomes_an_alias(index: DesignationIndex) -> None:
    ftb = index.get("KPe.047")
    assert ftb is not None
    assert ftb.name == "FOREIGN TRADE BANK (FTB)"
    assert ftb.aliases[0] == "FTB"
    assert "Mooyokbank" in ftb.aliases


def test_empty_alias_elements_are_ignored(index: DesignationIndex) -> None:
    d = index.get("KPi.033")
    assert d is not None and d.aliases == ()


def test_semicolon_separated_alias_names_are_split() -> None:
    data = _xml(
        "<ENTITIES><ENTITY><FIRST_NAME>ALPHA TRADING</FIRST_NAME><UN_LIST_TYPE>DPRK</UN_LIST_TYPE>"
        "<REFERENCE_NUMBER>KPe.900</REFERENCE_NUMBER><ENTITY_ALIAS><QUALITY>a.k.a.</QUALITY>"
        "<ALIAS_NAME>Beta Trading; Gamma Trading</ALIAS_NAME></ENTITY_ALIAS></ENTITY></ENTITIES>"
    )
    (d,) = parse_consolidated_list(data)
    assert d.aliases == ("Beta Trading", "Gamma Trading")


def test_record_without_reference_or_name() -> None:
    data = _xml(
        "<INDIVIDUALS><INDIVIDUAL><DATAID>42</DATAID><FIRST_NAME>ALPHA</FIRST_NAME>"
        "<SECOND_NAME>OMEGA</SECOND_NAME><UN_LIST_TYPE>Taliban</UN_LIST_TYPE></INDIVIDUAL>"
        "<INDIVIDUAL><DATAID>43</DATAID><UN_LIST_TYPE>Taliban</UN_LIST_TYPE></INDIVIDUAL>"
        "</INDIVIDUALS>"
    )
    (d,) = parse_consolidated_list(data)  # the nameless record is skipped
    assert (d.ref, d.name, d.regime) == ("DATAID:42", "ALPHA OMEGA", "taliban")


# --- regimes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("list_type", "ref", "regime"),
    [
        ("DPRK", "KPi.033", "dprk"),
        ("Al-Qaida", "QDi.400", "isil_aq"),
        ("Taliban", "TAi.005", "taliban"),
        ("CAR", "CFi.002", "car"),
        ("DRC", "CDi.001", "drc"),
        ("Haiti", "HTi.001", "haiti"),
        ("Libya", "LYi.006", "libya"),
        ("Somalia", "SOi.023", "somalia"),
        ("Yemen", "YEi.001", "yemen"),
        ("Iraq", "IQi.001", "iraq"),
        ("1518", "IQe.001", "iraq"),
        ("South Sudan", "SSi.001", "south_sudan"),
        ("Sudan", "SDi.001", "sudan"),
        ("Iran", "IRe.001", "iran"),
        ("Mali", "MLi.001", "mali"),
        ("Lebanon", "", "lebanon"),
        ("", "KPe.001", "dprk"),  # no list type: the reference prefix decides
        ("Something New", "SSe.004", "south_sudan"),
        ("GB", "GBi.001", "other"),  # Guinea-Bissau: not one of our regimes
    ],
)
def test_regime_mapping(list_type: str, ref: str, regime: str) -> None:
    assert map_regime(list_type, ref) == regime
    assert regime == "other" or regime in dz.REGIMES


def test_fixture_regimes(index: DesignationIndex) -> None:
    regimes = {d.ref: d.regime for d in index.designations}
    assert regimes["HTi.001"] == "haiti"
    assert regimes["SOe.001"] == "somalia"
    assert regimes["QDe.161"] == "isil_aq"
    assert regimes["IMO9562233"] == "dprk"


# --- IMO numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["8905490", "9562233", "8628597", "8937675", "8518572", "9074729", " 9562233 "]
)
def test_valid_imo_numbers(number: str) -> None:
    assert is_valid_imo(number)


@pytest.mark.parametrize(
    "number",
    [
        "8905491",
        "9562234",
        "5571322",
        "5905801",
        "562233",
        "95622330",
        "95622a3",
        "",
        "IMO9562233",
        "٩٥٦٢٢٣٣",
    ],  # wrong check digit, company numbers, lengths, letters, Arabic-Indic digits
)
def test_invalid_imo_numbers(number: str) -> None:
    assert not is_valid_imo(number)


def test_find_imo_numbers_formats_and_check_digit() -> None:
    text = (
        "IMO 8905490 was seen; later IMO no. 9562233, IMO: 8628597, IMO Number 8937675 "
        "and IMO8518572. Not IMO 8905491, not 12345678, not passport 9074729."
    )
    assert find_imo_numbers(text) == ["8905490", "9562233", "8628597", "8937675", "8518572"]
    assert find_imo_numbers("imo no 8905490 and again IMO 8905490") == ["8905490"]


def test_vessels_carry_imo_and_companies_do_not(index: DesignationIndex) -> None:
    petrel = index.get("IMO9562233")
    assert petrel is not None
    assert (petrel.kind, petrel.name, petrel.imo, petrel.aliases) == (
        "vessel",
        "PETREL 8",
        "9562233",
        ("Jal Vahini",),
    )
    # the real list's "IMO number: 5571322" is a company number: fails the ship check digit
    company = index.get("KPe.056")
    assert company is not None and (company.kind, company.imo) == ("entity", None)


def test_company_labelled_imo_that_passes_the_check_digit_is_not_a_ship() -> None:
    data = _xml(
        "<ENTITIES><ENTITY><FIRST_NAME>OCEAN STAR</FIRST_NAME><UN_LIST_TYPE>DPRK</UN_LIST_TYPE>"
        "<REFERENCE_NUMBER>KPe.901</REFERENCE_NUMBER><COMMENTS1>Company Number IMO 1790183."
        "</COMMENTS1></ENTITY><ENTITY><FIRST_NAME>OCEAN STAR SHIPPING CO</FIRST_NAME>"
        "<UN_LIST_TYPE>DPRK</UN_LIST_TYPE><REFERENCE_NUMBER>KPe.902</REFERENCE_NUMBER>"
        "<COMMENTS1>Owner of a vessel, IMO 9562233.</COMMENTS1></ENTITY></ENTITIES>"
    )
    first, second = parse_consolidated_list(data)
    assert (first.kind, first.imo) == ("entity", None)
    assert (second.kind, second.imo) == ("entity", "9562233")  # a company name stays an entity


# --- matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("KOMID brokered the deal.", "KPe.001"),
        ("the Korea Mining Development Trading Corp. in Khartoum", "KPe.001"),
        ("Changgwang Sinyong Corporation invoices", "KPe.001"),
        ("Kim Song Chol met officials.", "KPi.030"),
        ("KIM SONG CHOL met officials.", "KPi.030"),
        ("Song Chol Kim met officials.", "KPi.030"),  # name order
        ("Kim Song-chol met officials.", "KPi.030"),
        ("Kim Sung Chul met officials.", "KPi.030"),  # transliteration
        ("Jo Yong-chol was posted to Syria.", "KPi.034"),
        ("Cho Yong Chol was posted to Syria.", "KPi.034"),
        ("Ri Pyong-chol watched the launch.", "KPi.076"),
        ("Jong Hyok Son was refused a visa.", "KPi.031"),
        ("Abdulkhaliq al-Houthi commanded the units.", "YEi.001"),
        ("Abdul-Khaliq al-Houthi commanded the units.", "YEi.001"),
        ("قال عبدالخالق الحوثي إن", "YEi.001"),
        ("Eyad Nazmi Saleh Khalil leads the wing.", "QDi.400"),
        ("Hajji Abdelnasser chaired the committee.", "QDi.420"),
        ("Omar Mahmoud Uthman returned to Jordan.", "QDi.031"),
        ("Jimmy Chérizier warned the council.", "HTi.001"),  # accents
        ("Jimmy Cherisier warned the council.", "HTi.001"),  # spelling slip
        ("Jimmy 'Barbecue' Cherizier warned the council.", "HTi.001"),  # quoted nickname
        ("Nourredine Adam crossed into Sudan.", "CFi.002"),
        ("Al-Shabaab fighters attacked a base near Mogadishu.", "SOe.001"),
        ("An al-Qaeda affiliate in the Sahel released a video.", "QDe.004"),
        ("ISIS-K claimed the attack.", "QDe.161"),
        ("Payments went through Mooyokbank.", "KPe.047"),
        ("Payments went through Mooyok Bank, the Panel said.", "KPe.047"),
        ("Chonmyong Shipping's tanker took part.", "KPe.056"),  # legal suffix optional
        ("North Korea's Ministry of National Defence signed.", "KPe.054"),
        ("沈忠國際海運有限公司管理的船隻", "KPe.073"),
        ("The tanker Petrel 8 was seen off Nampo.", "IMO9562233"),
        ("A ship with IMO no. 8937675 sailed.", "IMO8937675"),
    ],
)
def test_matches_variants(index: DesignationIndex, text: str, ref: str) -> None:
    assert ref in refs(index, text)


@pytest.mark.parametrize(
    "text",
    [
        "Kim Song Chon, a table tennis coach, won.",  # one letter off a short Korean syllable
        "Kim Yong Chol met US envoys.",
        "Son Heung-min scored twice.",  # KPi.031 alias "Son Min" must not match inside it
        "The student Son Min-jae won the olympiad.",
        "Mohamed Belkacem was appointed minister.",  # slip on the only rare word
        "Eric Badge presented the award.",
        "Abdul Rahman said the harvest was good.",  # a low-quality, common alias
        "Haji Mudir, a shopkeeper in Herat, sells carpets.",
        "the barbecue was fine",  # single-word low-quality alias
        "Barbecue season opens in Port-au-Prince.",
        "Al-Shabab beat Al-Hilal in the Saudi Pro League.",  # one common word, no context
        "Jie Shun Li, a Shanghai architect, won a prize.",  # ship name, no maritime context
        "The UK Ministry of Defence announced new frigates.",
        "South Korea's Ministry of National Defense said the drills would resume.",
        "The Foreign Trade Bank of Vietnam reported profits.",
        "Strategic Rocket Forces of Russia tested a missile.",
        "The fishing boat Petrel 5 returned to port.",
        "A ship with IMO 9562234 was inspected.",  # check digit fails
        "komid shipments",  # a short acronym must be written in capitals
        "Mooyokbanking is not a word.",
        "The committee said the report would be published after the meeting.",
    ],
)
def test_no_match_on_near_misses(index: DesignationIndex, text: str) -> None:
    assert index.match(text) == []


def test_match_record_fields_and_offsets(index: DesignationIndex) -> None:
    text = (
        "Officials said Jo Yong-chol and the tanker Petrel 8 (IMO 9562233) met Al-Qaida militants."
    )
    matches = index.match(text)
    assert [m.ref for m in matches] == ["KPi.034", "IMO9562233", "IMO9562233", "QDe.004"]
    for m in matches:
        assert text[m.start : m.end] == m.matched
        assert 0.75 <= m.score <= 1.0
    jo = matches[0]
    assert (jo.matched, jo.alias, jo.kind, jo.regime, jo.name) == (
        "Jo Yong-chol",
        "JO YONG CHOL",
        "individual",
        "dprk",
        "JO YONG CHOL",
    )
    assert (matches[2].matched, matches[2].score) == ("9562233", 1.0)
    assert matches[3].matched == "Al-Qaida"


def test_one_word_names_need_context(index: DesignationIndex) -> None:
    assert refs(index, "Al-Qaida sent envoys.") == set()
    assert refs(index, "Al-Qaida militants sent envoys.") == {"QDe.004"}
    # another designation of the same regime in the text is context too
    assert refs(index, "Mohamed Omar Mohamed, al-Shabaab's governor for Diinsor, was listed.") == {
        "SOi.025",
        "SOe.001",
    }


def test_low_quality_alias_scores_below_a_good_one(index: DesignationIndex) -> None:
    (low,) = index.match("Abu Qatada al-Filistini was deported to Jordan.")
    (good,) = index.match("Omar Mohammed Othman was deported to Jordan.")
    assert low.ref == good.ref == "QDi.031"
    assert low.score < good.score


def test_bare_imo_number_matches_with_lower_score(index: DesignationIndex) -> None:
    (m,) = index.match("Tracking data for 8628597 stops in the Yellow Sea.")
    assert (m.ref, m.score) == ("IMO8628597", 0.9)


def test_min_score_is_configurable() -> None:
    strict = load_consolidated_list(FIXTURE, min_score=0.99)
    assert refs(strict, "Kim Song Chol met officials.") == {"KPi.030"}
    assert refs(strict, "KOMID brokered the deal.") == set()  # one-word alias scores 0.8


def test_matching_is_indexed_not_pairwise() -> None:
    """3,000 designations and 2,000 words: a pairwise fuzzy scan would take seconds."""
    names = [f"Name{a}{b} Family{b}{a} Tribe{a}" for a in range(60) for b in range(50)]
    big = DesignationIndex(
        Designation(f"X{i}", "individual", n, (), "isil_aq", None, None)
        for i, n in enumerate(names)
    )
    text = " ".join(["The committee said the report would be published soon."] * 200)
    text += " Name1213 Family1312 Tribe12 was seen."
    t0 = time.thread_time()
    matches = big.match(text)
    assert (time.thread_time() - t0) < 0.25
    assert [m.ref for m in matches] == [f"X{12 * 50 + 13}"]


# --- hostile and malformed files ----------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<CONSOLIDATED_LIST><INDIVIDUALS><INDIVIDUAL><FIRST_NAME>&lol9;</FIRST_NAME>
<UN_LIST_TYPE>DPRK</UN_LIST_TYPE></INDIVIDUAL></INDIVIDUALS></CONSOLIDATED_LIST>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<CONSOLIDATED_LIST><ENTITIES><ENTITY><FIRST_NAME>&xxe;</FIRST_NAME></ENTITY></ENTITIES>
</CONSOLIDATED_LIST>"""


@pytest.mark.parametrize(
    "data",
    [
        BILLION_LAUGHS,
        XXE,
        BILLION_LAUGHS.decode().replace('<?xml version="1.0"?>', "").encode("utf-16"),
        b'<?xml version="1.0"?><!DOCTYPE CONSOLIDATED_LIST SYSTEM "http://example.invalid/x.dtd">'
        b"<CONSOLIDATED_LIST/>",
    ],
    ids=["billion-laughs", "external-entity", "utf16-doctype", "external-dtd"],
)
def test_hostile_xml_is_refused_quickly(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "consolidated.xml"
    path.write_bytes(data)
    t0 = time.perf_counter()
    with pytest.raises(DesignationListError) as err:
        load_consolidated_list(path)
    assert time.perf_counter() - t0 < 1.0
    assert str(path) in str(err.value)
    assert "DOCTYPE" in str(err.value)


def test_malformed_file_names_the_file_and_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "truncated.xml"
    path.write_bytes(FIXTURE.read_bytes()[:5000])
    with pytest.raises(DesignationListError) as err:
        load_consolidated_list(path)
    message = str(err.value)
    assert message.startswith(f"{path}: malformed XML")
    assert "line" in message
    assert isinstance(err.value, SanctionsWatchError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<sdnList><sdnEntry/></sdnList>", "root element is <sdnList>"),
        (b"<CONSOLIDATED_LIST><INDIVIDUALS/></CONSOLIDATED_LIST>", "no INDIVIDUAL or ENTITY"),
        (b"", "malformed XML"),
        (b"\xff\xfe\x00garbage", "malformed XML"),
    ],
)
def test_wrong_or_empty_files_are_refused(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "list.xml"
    path.write_bytes(data)
    with pytest.raises(DesignationListError, match=reason):
        load_consolidated_list(path)


def test_missing_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.xml"
    with pytest.raises(DesignationListError, match=f"{missing}: cannot read"):
        load_consolidated_list(missing)
    monkeypatch.setattr(dz, "MAX_BYTES", 1000)
    with pytest.raises(DesignationListError, match="over 1000"):
        load_consolidated_list(FIXTURE)
