"""The UN Security Council Consolidated List: safe parsing, IMO numbers, and a fast name index.

The operator downloads the official XML (see ``docs/consolidated-list.md``) and points the setting
``designations_path`` at it; nothing is fetched at run time. The file is treated as untrusted: it is
parsed with expat directly, refusing any DOCTYPE or entity declaration before it is processed, and a
malformed or refused file raises :class:`~pipeline.errors.DesignationListError` naming the file.

What the list holds (checked against published copies of 2020 and 2024): ``INDIVIDUALS/INDIVIDUAL``
(FIRST_NAME..FOURTH_NAME, UN_LIST_TYPE, REFERENCE_NUMBER, LISTED_ON, NAME_ORIGINAL_SCRIPT,
NATIONALITY/VALUE, INDIVIDUAL_ALIAS with QUALITY Good/Low and ALIAS_NAME) and ``ENTITIES/ENTITY``
(FIRST_NAME, ENTITY_ALIAS with QUALITY a.k.a./f.k.a./Low, COMMENTS1). There is no vessel element: an
ENTITY becomes a ``vessel`` when its listing records a ship IMO number that passes the check digit
and its name is not a company's. The "IMO number: 5571322" of DPRK shipping companies are IMO
*company* numbers, which fail the ship check digit and are ignored (logged at debug level).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn
from xml.etree import ElementTree as ET
from xml.parsers import expat

from pipeline.errors import DesignationListError
from pipeline.knowledge.matching import MIN_SCORE, NameMatcher, NameSpec, canon

__all__ = [
    "Designation",
    "DesignationIndex",
    "DesignationListError",
    "DesignationMatch",
    "find_imo_numbers",
    "is_valid_imo",
    "load_consolidated_list",
    "map_regime",
    "parse_consolidated_list",
]

log = logging.getLogger(__name__)

Kind = Literal["individual", "entity", "vessel"]
MAX_BYTES = 64 * 1024 * 1024  # the real file is about 2 MB


def _words(text: str) -> list[str]:
    return text.split()


def _table(text: str) -> dict[str, str]:
    """``"a:x b:y"`` as ``{"a": "x", "b": "y"}`` (keeps long lookup tables short)."""
    return dict(pair.split(":", 1) for pair in _words(text))


# UN_LIST_TYPE, lower case, letters and digits only -> our regime key
_LIST_TYPES = _table(
    "dprk:dprk iran:iran libya:libya yemen:yemen sudan:sudan southsudan:south_sudan "
    "somalia:somalia car:car centralafricanrepublic:car drc:drc democraticrepublicofthecongo:drc "
    "haiti:haiti iraq:iraq 1518:iraq lebanon:lebanon 1636:lebanon alqaida:isil_aq isil:isil_aq "
    "isilalqaida:isil_aq daesh:isil_aq taliban:taliban mali:mali"
)
# the reference number's prefix (KPi.033 -> KP) when UN_LIST_TYPE is missing or new
_REF_PREFIXES = _table(
    "KP:dprk IR:iran LY:libya YE:yemen SD:sudan SS:south_sudan SO:somalia CF:car CD:drc HT:haiti "
    "IQ:iraq LB:lebanon QD:isil_aq TA:taliban ML:mali"
)
REGIMES = tuple(dict.fromkeys(_REF_PREFIXES.values()))  # our 15 regime keys
IMO_RE = re.compile(r"\bIMO(?:[\s.:#-]*(?:no|nr|number|num)\b)?[\s.:#-]*(\d{7})(?!\d)", re.I)
BARE_7_RE = re.compile(r"(?<![\d-])\d{7}(?![\d-])")
_COMPANY_IMO_RE = re.compile(r"compan|owner\s+(?:identification|id)", re.I)
_ORG_WORDS = frozenset(
    canon(w)
    for w in _words(
        "co company corp corporation ltd limited inc llc jv plc gmbh sa pte bank group trading "
        "shipping shpg marine maritime management agency enterprise industries holdings"
    )
)
_PAREN_RE = re.compile(r"\s*\(([^()]*)\)")


@dataclass(slots=True, frozen=True)
class Designation:
    """One listed individual, entity or vessel."""

    ref: str
    kind: Kind
    name: str
    aliases: tuple[str, ...]
    regime: str
    listed_on: str | None
    imo: str | None
    nationality: tuple[str, ...] = ()
    name_original_script: str | None = None
    low_quality_aliases: tuple[str, ...] = ()  # also in ``aliases``; weighted down when matching
    list_type: str = ""


@dataclass(slots=True, frozen=True)
class DesignationMatch:
    """A designation found in a text: ``matched`` is ``text[start:end]``, ``alias`` the listed name."""

    ref: str
    name: str
    matched: str
    alias: str
    score: float
    start: int
    end: int
    kind: Kind
    regime: str


def is_valid_imo(number: str) -> bool:
    """True for a 7-digit IMO ship number whose last digit is the check digit (weights 7..2)."""
    digits = number.strip()
    if not re.fullmatch(r"[0-9]{7}", digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:6], (7, 6, 5, 4, 3, 2), strict=True))
    return total % 10 == int(digits[6])


def find_imo_numbers(text: str) -> list[str]:
    """Valid IMO numbers written after "IMO" ("IMO 8905490", "IMO no. 8905490", "IMO: 8905490")."""
    found: list[str] = []
    for m in IMO_RE.finditer(text):
        if is_valid_imo(m.group(1)) and m.group(1) not in found:
            found.append(m.group(1))
    return found


def map_regime(list_type: str, ref: str = "") -> str:
    """Our regime key for a UN_LIST_TYPE (falling back on the reference prefix), else ``other``."""
    key = re.sub(r"[^a-z0-9]", "", list_type.lower())
    if key in _LIST_TYPES:
        return _LIST_TYPES[key]
    regime = _REF_PREFIXES.get(ref.strip()[:2].upper())
    if regime is None:
        log.warning("unknown UN_LIST_TYPE %r (reference %r): regime 'other'", list_type, ref)
        return "other"
    return regime


class _Refused(Exception):
    pass


def _refuse(*_args: object) -> NoReturn:
    raise _Refused


def _error(source: str, reason: str) -> DesignationListError:
    return DesignationListError(f"{source}: {reason}")


def _parse_xml(data: bytes, source: str) -> ET.Element:
    if len(data) > MAX_BYTES:
        raise _error(source, f"file is {len(data)} bytes, over {MAX_BYTES}")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _error(source, "DOCTYPE and ENTITY declarations are refused")
    parser = expat.ParserCreate()
    builder = ET.TreeBuilder()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        root = builder.close()
    except _Refused:
        raise _error(source, "DOCTYPE and ENTITY declarations are refused") from None
    except expat.ExpatError as exc:
        raise _error(source, f"malformed XML: {exc}") from None
    if root.tag != "CONSOLIDATED_LIST":
        raise _error(source, f"root element is <{root.tag}>, not <CONSOLIDATED_LIST>")
    return root


def _text(node: ET.Element, path: str) -> str:
    found = node.find(path)
    return " ".join((found.text or "").split()) if found is not None else ""


def _values(node: ET.Element, path: str) -> tuple[str, ...]:
    return tuple(v for v in (" ".join((e.text or "").split()) for e in node.findall(path)) if v)


def _name_variants(name: str) -> list[str]:
    """A name without its parentheses, plus a parenthesised acronym or other-script form."""
    out = [_PAREN_RE.sub("", name).strip()]
    for inner in _PAREN_RE.findall(name):
        inner = inner.strip()
        if inner and (len(inner.split()) == 1 or not inner.isascii()):
            out.append(inner)
    return [v for v in out if v]


def _aliases(node: ET.Element, tag: str, primary: str) -> tuple[list[str], list[str]]:
    good: list[str] = []
    low: list[str] = []
    seen = {primary.casefold()}
    for alias in node.findall(tag):
        is_low = _text(alias, "QUALITY").lower() == "low"
        for name in _text(alias, "ALIAS_NAME").split(";"):
            for variant in _name_variants(name.strip()):
                if variant.casefold() not in seen:
                    seen.add(variant.casefold())
                    (low if is_low else good).append(variant)
    return good, low


def _ship_imo(node: ET.Element, source: str, ref: str) -> str | None:
    text = " ".join((_text(node, "FIRST_NAME"), _text(node, "COMMENTS1")))
    for m in IMO_RE.finditer(text):
        number = m.group(1)
        if _COMPANY_IMO_RE.search(text[max(0, m.start() - 30) : m.start()]):
            log.debug("%s: %s: IMO company number %s ignored", source, ref, number)
        elif not is_valid_imo(number):
            log.debug(
                "%s: %s: IMO-labelled %s fails the ship check digit (company number?)",
                source,
                ref,
                number,
            )
        else:
            return number
    return None


def _designation(node: ET.Element, person: bool, source: str) -> Designation | None:
    if person:
        parts = ("FIRST_NAME", "SECOND_NAME", "THIRD_NAME", "FOURTH_NAME")
        name = " ".join(p for p in (_text(node, t) for t in parts) if p)
    else:
        name = _text(node, "FIRST_NAME")
    list_type = _text(node, "UN_LIST_TYPE")
    ref = _text(node, "REFERENCE_NUMBER")
    if not name:
        log.warning("%s: record %s has no name; skipped", source, ref or _text(node, "DATAID"))
        return None
    imo = None if person else _ship_imo(node, source, ref or name)
    kind: Kind = "individual" if person else "entity"
    if imo and not {canon(w) for w in re.findall(r"\w+", name)} & _ORG_WORDS:
        kind = "vessel"
    ref = ref or (f"IMO{imo}" if kind == "vessel" else f"DATAID:{_text(node, 'DATAID')}")
    good, low = _aliases(node, "INDIVIDUAL_ALIAS" if person else "ENTITY_ALIAS", name)
    good = [v for v in _name_variants(name)[1:] if v not in good] + good
    original = _text(node, "NAME_ORIGINAL_SCRIPT") or None
    if original and original.casefold() != name.casefold() and original not in good:
        good.append(original)
    listed = _text(node, "LISTED_ON")[:10] or None
    return Designation(
        ref=ref,
        kind=kind,
        name=name,
        aliases=tuple(good + low),
        regime=map_regime(list_type, ref),
        listed_on=listed,
        imo=imo,
        nationality=_values(node, "NATIONALITY/VALUE"),
        name_original_script=original,
        low_quality_aliases=tuple(low),
        list_type=list_type,
    )


def parse_consolidated_list(data: bytes, source: str = "<bytes>") -> tuple[Designation, ...]:
    """Every designation in the XML ``data``; ``source`` names the file in errors and logs."""
    root = _parse_xml(data, source)
    nodes = [(n, True) for n in root.iter("INDIVIDUAL")] + [(n, False) for n in root.iter("ENTITY")]
    if not nodes:
        raise _error(source, "no INDIVIDUAL or ENTITY records")
    out = tuple(d for d in (_designation(n, p, source) for n, p in nodes) if d is not None)
    log.info(
        "%s: %d designations (%d vessels) from %s",
        source,
        len(out),
        sum(d.kind == "vessel" for d in out),
        root.get("dateGenerated", "an undated list"),
    )
    return out


class DesignationIndex:
    """All designations of a list, indexed for :meth:`match` on article text."""

    def __init__(self, designations: Iterable[Designation], *, min_score: float = MIN_SCORE):
        self.designations: tuple[Designation, ...] = tuple(designations)
        self._by_ref = {d.ref: d for d in self.designations}
        self._by_imo: dict[str, list[int]] = {}
        specs: list[NameSpec] = []
        for i, d in enumerate(self.designations):
            low = set(d.low_quality_aliases)
            for name in (_name_variants(d.name)[0], *d.aliases):
                specs.append(
                    NameSpec(
                        i, name, name in low, d.kind == "individual", d.regime, d.kind == "vessel"
                    )
                )
            if d.imo:
                self._by_imo.setdefault(d.imo, []).append(i)
        self._names = NameMatcher(specs, min_score=min_score)

    def __len__(self) -> int:
        return len(self.designations)

    def get(self, ref: str) -> Designation | None:
        return self._by_ref.get(ref)

    def match(self, text: str) -> list[DesignationMatch]:
        """Designations named in ``text`` (by name, alias or IMO number), in text order."""
        out = [
            self._result(self.designations[h.owner], text, h.name, h.score, h.start, h.end)
            for h in self._names.find(text)
        ]
        if self._by_imo:
            keyed = {m.start(1): m for m in IMO_RE.finditer(text)}
            for m in BARE_7_RE.finditer(text):
                number = m.group()
                for i in self._by_imo.get(number, ()):
                    d = self.designations[i]
                    score = 1.0 if m.start() in keyed else 0.9
                    out.append(self._result(d, text, f"IMO {number}", score, m.start(), m.end()))
        return sorted(out, key=lambda r: (r.start, -r.score, r.ref))

    @staticmethod
    def _result(
        d: Designation, text: str, alias: str, score: float, start: int, end: int
    ) -> DesignationMatch:
        return DesignationMatch(
            ref=d.ref,
            name=d.name,
            matched=text[start:end],
            alias=alias,
            score=score,
            start=start,
            end=end,
            kind=d.kind,
            regime=d.regime,
        )


def load_consolidated_list(path: str | Path, *, min_score: float = MIN_SCORE) -> DesignationIndex:
    """Read and index the consolidated list XML at ``path``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise _error(str(path), f"file is {size} bytes, over {MAX_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise _error(str(path), f"cannot read: {exc.strerror or exc}") from None
    return DesignationIndex(parse_consolidated_list(data, str(path)), min_score=min_score)
