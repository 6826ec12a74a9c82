"""Who a text names: states, armed groups, people, entities and vessels, in every supported language.

Three sources, one list of :class:`ActorMention` in text order:

* the actors gazetteer (``config/actors.yaml``) together with the regime aliases of
  ``config/regimes.yaml``: a regime alias names the actor that lists it, else a place of
  ``config/places.yaml``, else nothing when it is under ``not_actors``, else the regime's principal
  actor ("평양", "Пхеньян" and "Pyongyang" name North Korea);
* the UN Consolidated List matcher (:class:`~pipeline.knowledge.designations.DesignationIndex`), whose
  matches are marked ``listed`` and win over a gazetteer match of the same words;
* vessel names written after a ship word ("the tanker Koti", "M/V Wise Honest",
  "Hong Kong-flagged Lighthouse Winmore", "Sam Jong 2号"); navy ships (USS, HMS, ...) are left out.
  In Korean, Chinese and Russian text too: a name in Hangul before 호 after a ship word or in quotes
  before 호 ("유조선 천마산호", "'천마산'호"; "'만리경 1호'" is a satellite), a name in Chinese
  characters before 号 after a ship word or in quotes before 号 ("油轮“天马山”号", "“天马山”号油轮";
  "“嫦娥五号”" is a spacecraft), a name in «» or Latin letters after a Russian ship
  word in any case ("танкер «Коти»", "на танкере Koti"), a Latin name after a Korean or Chinese ship
  word ("유조선 Koti"). A name not in Latin letters is shown romanised, syllable by syllable for
  Hangul and Chinese ("Cheon Ma San", UN-list style), letter by letter for Cyrillic (``anyascii``,
  a table, no model): the facts line stays English; the original is kept as the mention's text.
  Common nouns that end in 호/号 ("번호" number, "信号" signal, "决议" resolutions) are not names.

A state named only as a flag ("a Panama-flagged tanker", "파나마 선적", "香港籍") is not an actor.
Strict loading: unknown keys or types, a regime that is not in regimes.yaml, a regime without exactly
one principal, an alias given to two actors are :class:`~pipeline.errors.ConfigError` naming the file
and the entry. Everything but loading is pure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from anyascii import anyascii

from pipeline.errors import ConfigError
from pipeline.knowledge.gazetteer import Gazetteer
from pipeline.knowledge.places import PlaceBook
from pipeline.knowledge.regimes import RegimeBook

__all__ = [
    "ACTOR_TYPES",
    "Actor",
    "ActorBook",
    "ActorMention",
    "find_vessels",
    "listed_mentions",
    "load_actors",
    "parse_actors",
]

log = logging.getLogger(__name__)

ACTOR_TYPES = frozenset({"state", "group", "person", "entity", "vessel"})
_KEYS = frozenset({"id", "name", "type", "regime", "principal", "aliases", "note"})
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    name: str  # English, as alerts show it
    type: str
    regime: str | None = None
    listed: bool = False  # on the UN Consolidated List
    ref: str | None = None  # its reference number there


@dataclass(frozen=True, slots=True)
class ActorMention:
    actor: Actor
    start: int
    end: int
    text: str


# A state named as a flag of convenience is not an actor of the story.
_FLAG_AFTER = re.compile(r"^(?:[\s-]*(?:flagged|registered)\b|\s*(?:선적|籍|国籍))", re.I)
_FLAG_BEFORE = re.compile(
    r"(?:\bflag of|\bpavillon(?: de| du)?|\bbandera(?: de)?|под флагом|\bflagged (?:in|to))\s*$",
    re.I,
)


@dataclass(frozen=True, slots=True)
class ActorBook:
    actors: Mapping[str, Actor]
    gazetteer: Gazetteer

    def find(self, text: str) -> list[ActorMention]:
        """Actors of the gazetteer named in ``text`` (NFKC-normalised), flags left out."""
        out: list[ActorMention] = []
        for m in self.gazetteer.find(text):
            actor = self.actors[m.key]
            if actor.type == "state" and (
                _FLAG_AFTER.match(text[m.end : m.end + 12])
                or _FLAG_BEFORE.search(text[max(0, m.start - 20) : m.start])
            ):
                continue
            out.append(ActorMention(actor, m.start, m.end, m.text))
        return out


def _fail(source: str, where: str, reason: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {reason}")


def _norm(alias: str) -> str:
    return " ".join(alias.split())


def parse_actors(
    data: Any, regimes: RegimeBook, places: PlaceBook, source: str = "actors.yaml"
) -> ActorBook:
    """Validate the parsed YAML of an actors file against the regimes and places it relies on."""
    if not isinstance(data, Mapping) or set(data) - {"actors", "not_actors"}:
        raise _fail(
            source, "top level", "must be a mapping with the keys 'actors' and 'not_actors'"
        )
    raw = data.get("actors")
    if not isinstance(raw, list) or not raw:
        raise _fail(source, "actors", "must be a non-empty list")
    not_actors = data.get("not_actors") or []
    if not isinstance(not_actors, list) or not all(isinstance(a, str) for a in not_actors):
        raise _fail(source, "not_actors", "must be a list of strings")
    ignored = {_norm(a).casefold() for a in not_actors}
    actors: dict[str, Actor] = {}
    entries: list[tuple[str, str]] = []
    owner: dict[str, str] = {}  # folded alias -> actor id
    principal: dict[str, str] = {}  # regime -> actor id
    for i, item in enumerate(raw):
        where = f"actors[{i}]"
        if not isinstance(item, Mapping):
            raise _fail(source, where, "must be a mapping")
        unknown = sorted(set(item) - _KEYS)
        if unknown:
            raise _fail(source, f"{where}.{unknown[0]}", f"unknown key (allowed: {sorted(_KEYS)})")
        aid = item.get("id")
        if not isinstance(aid, str) or not _ID_RE.match(aid) or aid in actors:
            raise _fail(source, f"{where}.id", f"must be a unique lowercase slug, got {aid!r}")
        where = f"actors[{i}] ({aid})"
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _fail(source, f"{where}.name", "must be a non-empty string")
        kind = item.get("type")
        if kind not in ACTOR_TYPES - {"vessel"}:
            raise _fail(
                source, f"{where}.type", f"{kind!r} is not one of state, group, person, entity"
            )
        regime = item.get("regime")
        if regime is not None and regimes.get(str(regime)) is None:
            raise _fail(source, f"{where}.regime", f"{regime!r} is not a regime of regimes.yaml")
        if item.get("principal"):
            if regime is None:
                raise _fail(source, f"{where}.principal", "a principal actor needs a regime")
            if regime in principal:
                raise _fail(
                    source, f"{where}.principal", f"{regime} already has {principal[regime]}"
                )
            principal[str(regime)] = aid
        aliases = item.get("aliases") or []
        if not isinstance(aliases, list) or not all(
            isinstance(a, str) and a.strip() for a in aliases
        ):
            raise _fail(source, f"{where}.aliases", "must be a list of non-empty strings")
        for alias in (name, *aliases):
            folded = _norm(alias).casefold()
            if folded in ignored:
                raise _fail(source, f"{where}.aliases", f"{alias!r} is also under not_actors")
            other = owner.setdefault(folded, aid)
            if other != aid:
                raise _fail(source, f"{where}.aliases", f"{alias!r} is already an alias of {other}")
            entries.append((aid, _norm(alias)))
        actors[aid] = Actor(aid, name.strip(), str(kind), str(regime) if regime else None)
    missing = sorted(set(regimes.regimes) - set(principal))
    if missing:
        raise _fail(source, "actors", f"regime {missing[0]} has no principal actor")
    place_aliases = places.folded_aliases()
    for key, regime_record in regimes.regimes.items():
        for alias in regime_record.aliases:
            folded = _norm(alias).casefold()
            if folded in owner or folded in place_aliases or folded in ignored:
                continue
            entries.append((principal[key], _norm(alias)))
    return ActorBook(actors, Gazetteer(entries))


@lru_cache(maxsize=8)
def load_actors(
    path: str | Path,
    regimes_path: str | Path,
    places_path: str | Path,
    *,
    missing_ok: bool = False,
) -> ActorBook:
    """Read and validate the actors file once (per path, regimes file and places file; a missing
    places file is allowed when ``missing_ok``)."""
    from pipeline.knowledge.places import load_places
    from pipeline.knowledge.regimes import load_regimes

    places = load_places(places_path, missing_ok=missing_ok)
    path = Path(path)
    if missing_ok and not path.exists():
        log.warning("%s does not exist: alerts will name actors only from the UN list", path)
        return ActorBook({}, Gazetteer(()))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the actors file: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path.name}: not valid YAML: {err}") from err
    return parse_actors(data, load_regimes(regimes_path), places, path.name)


# ----------------------------------------------------------------------------- UN list and vessels

_UN_TYPES = {"individual": "person", "entity": "entity", "vessel": "vessel"}


def listed_mentions(matches: Iterable[Any]) -> list[ActorMention]:
    """Actor mentions of UN Consolidated List matches
    (:class:`~pipeline.knowledge.designations.DesignationMatch`)."""
    out = []
    for m in matches:
        actor = Actor(
            id=f"un:{m.ref}",
            name=m.name,
            type=_UN_TYPES.get(m.kind, "entity"),
            regime=m.regime,
            listed=True,
            ref=m.ref,
        )
        out.append(ActorMention(actor, m.start, m.end, m.matched))
    return out


_NAME = r"[A-Z][\w'’.-]*(?:[ \t]+(?:[A-Z0-9][\w'’.-]*|\d+))*"
_SHIP_WORD = (
    r"(?:oil\s+|product\s+|chemical\s+|cargo\s+|container\s+|fishing\s+)?"
    r"(?:tanker|freighter|vessel|ship|bulk\s+carrier|bulker|boxship|carrier|dhow|trawler|barge)s?"
)
# ship words in any case, names case-sensitive (a name starts with a capital)
_VESSEL_RES = (
    re.compile(rf"\b(?:M/[VT]|MV|MT|M\.V\.)\s+(?P<name>{_NAME})"),
    re.compile(
        rf"\b(?i:{_SHIP_WORD})\s+(?:(?i:named|called)\s+)?(?:(?i:the)\s+)?[‘'\"“]?(?P<name>{_NAME})"
    ),
    re.compile(rf"-flagged\s+(?:(?i:{_SHIP_WORD})\s+)?(?P<name>{_NAME})"),
    re.compile(r"(?P<name>[A-Z][A-Za-z0-9-]*(?: [A-Z0-9][A-Za-z0-9-]*){0,3})\s?(?:号|호)"),
)
# words that end a vessel name rather than belong to it ("the tanker Koti at ...")
_NOT_NAMES = frozenset(
    {"the", "a", "an", "and", "or", "in", "on", "at", "of", "to", "for", "from", "with", "by", "as"}
    | {"was", "is", "were", "has", "had", "that", "this", "its", "their", "it", "he", "she"}
    | {"they", "which", "who", "said", "says", "would", "could", "will"}
)
_HANGUL = "\uac00-\ud7a3"
_HAN = "\u4e00-\u9fff"
_OPEN_Q = "[‘'\"“「『《〈]"
_CLOSE_Q = "[’'\"”」』》〉]"
_LATIN_NAME = r"[A-Z][A-Za-z0-9'’.-]*(?:[ \t]+[A-Z0-9][A-Za-z0-9'’.-]*)*"
_KO_SHIP = r"(?:유조선|화물선|선박|어선|운반선|벌크선|산적화물선|컨테이너선|탱커|상선|화물운반선)"
_ZH_SHIP = r"(?:油轮|油船|货轮|货船|船只|船舶|渔船|散货船|集装箱船|运输船|轮船|油輪|貨輪|貨船|船隻)"
_RU_SHIP = r"(?:танкер|судн|сухогруз|теплоход|траулер|балкер|контейнеровоз|корабл|барж)\w*"
_NUM = r"(?:\s?(?P<num>\d{1,3}))?"
# names written in another script, and Latin names after a ship word of another language
_SCRIPT_VESSEL_RES = (
    # 유조선 천마산호, 유조선 천마산 2호 (the name right after the ship word, no space inside)
    re.compile(rf"{_KO_SHIP}\s*(?P<name>[{_HANGUL}][{_HANGUL}0-9]{{0,9}}?){_NUM}호"),
    # 북한 선박 '천마산'호, '금진강 3'호 (호 after the quotes: '만리경 1호' is a satellite)
    re.compile(rf"{_OPEN_Q}(?P<name>[{_HANGUL}][{_HANGUL} ]{{0,14}}?){_NUM}{_CLOSE_Q}\s?호"),
    # 천마산호(유조선), 천마산호, 유조선
    re.compile(rf"(?P<name>[{_HANGUL}]{{2,10}}?){_NUM}호\s*[(,]\s*(?:[{_HANGUL}]+\s)?{_KO_SHIP}"),
    # 油轮“天马山”号, 油轮天马山号
    re.compile(rf"{_ZH_SHIP}{_OPEN_Q}?(?P<name>[{_HAN}]{{2,8}}?){_NUM}{_CLOSE_Q}?号"),
    # “天马山”号油轮, “天马山”号 (号 after the quotes: “嫦娥五号” is a spacecraft)
    re.compile(rf"{_OPEN_Q}(?P<name>[{_HAN}]{{2,8}}?){_NUM}{_CLOSE_Q}号"),
    # танкер «Коти», судно под названием «Вайз Онест», на танкере Koti
    re.compile(
        rf"(?i:{_RU_SHIP})\s+(?:(?i:под названием)\s+)?"
        rf"(?:[«\"“„](?P<name>[^»\"”“\n]{{2,40}})[»\"”“]|(?P<latin>{_LATIN_NAME}))"
    ),
    # 유조선 Koti, 油轮 Koti
    re.compile(rf"(?:{_KO_SHIP}|{_ZH_SHIP})\s*(?P<latin>{_LATIN_NAME})"),
)
# a name followed by 호 / 号 that ends so is a common noun ("식별번호" identification number)
_NOT_SHIP_ENDINGS = (
    "번호", "보호", "신호", "구호", "선호", "환호", "옹호", "암호", "부호", "기호", "칭호", "간호",
    "애호", "수호", "비호", "信号", "编号", "型号", "口号", "称号", "账号", "记号", "暗号", "信號",
)  # fmt: skip
_NOT_IN_SHIP_NAMES = ("决议", "決議", "第", "号码")


def romanise(name: str) -> str:
    """``천마산`` → ``Cheon Ma San``, ``天马山`` → ``Tian Ma Shan``, ``Вайз Онест`` → ``Vayz Onest``;
    Latin text unchanged. Hangul and Chinese syllable by syllable (the UN list writes Korean ship
    names so: "CHON MA SAN"), digits kept as a word."""
    words: list[str] = []
    current = ""
    for ch in name:
        syllable = "\uac00" <= ch <= "\ud7a3" or "\u4e00" <= ch <= "\u9fff"
        if syllable or ch.isspace():
            if current:
                words.append(current)
                current = ""
            if syllable:
                words.append(anyascii(ch).capitalize())
            continue
        current += ch
    if current:
        words.append(current)
    return " ".join(w if w.isascii() else anyascii(w) for w in words).strip()


def _latin_name(name: str) -> str:
    words = name.split()
    while words and words[-1].casefold() in _NOT_NAMES:
        words.pop()
    if not words or words[0].casefold() in _NOT_NAMES:
        return ""
    clean = " ".join(words[:_MAX_WORDS]).rstrip(".,'’")
    return clean if len(clean) >= 3 else ""


def _script_vessels(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, original, romanised) of vessel names in Korean, Chinese and Russian text."""
    out = []
    for pattern in _SCRIPT_VESSEL_RES:
        for m in pattern.finditer(text):
            group = "latin" if m.groupdict().get("latin") else "name"
            start = m.start(group)
            if group == "latin":
                original = _latin_name(m.group(group))
                end = start + len(original)
            else:
                num = m.groupdict().get("num")
                end = m.end("num") if num else m.end("name")
                original = text[start:end].strip()
                end = start + len(original)
                compact = original.replace(" ", "")
                if (
                    len(compact) < 2
                    or compact.isdigit()
                    or any((compact + t).endswith(w) for t in "호号" for w in _NOT_SHIP_ENDINGS)
                    or any(w in compact for w in _NOT_IN_SHIP_NAMES)
                ):
                    continue
            if original:
                out.append((start, end, original, romanise(original)))
    return out


_NAVY = re.compile(r"^(?:USS|USNS|USCGC|HMS|HMAS|HMCS|FS|INS|ITS|JS|ROKS|HNLMS)\b")
_MAX_WORDS = 4


def find_vessels(text: str, taken: Sequence[tuple[int, int]] = ()) -> list[ActorMention]:
    """Vessel names written after a ship word (see the module docstring), outside ``taken`` spans."""
    found: dict[tuple[int, int], ActorMention] = {}
    for pattern in _VESSEL_RES:
        for m in pattern.finditer(text):
            name = m.group("name")
            words = name.split()
            while words and words[-1].casefold() in _NOT_NAMES:
                words.pop()
            words = words[:_MAX_WORDS]
            if not words or words[0].casefold() in _NOT_NAMES or _NAVY.match(" ".join(words)):
                continue
            clean = " ".join(words).rstrip(".,'’")
            if len(clean) < 3 or not any(c.isalpha() for c in clean):
                continue
            start = m.start("name")
            end = start + len(clean)
            if any(s < end and start < e for s, e in taken):
                continue
            actor = Actor(id=f"vessel:{clean.casefold()}", name=clean, type="vessel")
            found.setdefault((start, end), ActorMention(actor, start, end, clean))
    for start, end, original, name in _script_vessels(text):
        if _NAVY.match(name) or any(s < end and start < e for s, e in taken):
            continue
        actor = Actor(id=f"vessel:{name.casefold()}", name=name, type="vessel")
        found.setdefault((start, end), ActorMention(actor, start, end, original))
    kept: list[ActorMention] = []
    for mention in sorted(found.values(), key=lambda v: (v.start, -(v.end - v.start))):
        if not any(k.start < mention.end and mention.start < k.end for k in kept):
            kept.append(mention)
    return kept
