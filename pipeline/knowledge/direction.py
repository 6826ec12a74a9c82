"""Direction of a transfer between two named parties, where the words of the text give one.

Rules over two consecutive endpoints A, B of one sentence (the text between them is short and holds
no sentence end), in the text's language and English (every language when it is unknown):

* an arrow: "A → B", "A -> B", "Iran-to-Houthi";
* from/to: "from A to B", "de A à B", "de A a B", "из A в B", "من A إلى B", "从A到B", "A에서 B로";
* giving: A, a verb of giving, then B after "to" or as the receiver: "A shipped shells to B",
  "A supplied the Houthis", "A livre des armes à B", "A envió armas a B", "A передала B",
  "زودت A B", "A向B提供", "A가 B에 ... 보냈다";
* getting: "B bought shells from A", "B is turning to A for ammunition", "B купила у A",
  "B가 A에서 ... 구매" give A → B.

Anything else gives no direction: a flow is reported only when the words say so. Pure.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Endpoint", "flows"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    key: str  # actor id or place id
    start: int
    end: int
    is_place: bool = False


_I = re.IGNORECASE
_SENTENCE_END = re.compile(r"[.!?;]\s|[。！？；\n]")
_MAX_BETWEEN = 120
_MAX_FROM_TO = 45
_ARROW = re.compile(r"^\s*(?:→|->|=>|⇒|⟶|–>|—>)\s*$|^[-‐‑–]to[-‐‑–]$", _I)


@dataclass(frozen=True, slots=True)
class _Cues:
    from_before: re.Pattern[str]  # the text before A ends with it: "from "
    to_end: re.Pattern[str]  # the text between A and B ends with it: " to "
    give: re.Pattern[str]
    get: re.Pattern[str]
    from_end: re.Pattern[str]  # the text between ends with it: " from "
    ditransitive: re.Pattern[str] | None = None  # between is only a verb of giving: "A sent B"
    turn_to: re.Pattern[str] | None = None  # "B is turning to A (for ...)"
    # from/to: the text between A and B may be up to _MAX_FROM_TO characters ending with the "to"
    # word (English), or nothing but that word (languages whose "from" word is also "of": de, из)
    loose_from_to: bool = False


def _c(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, _I)


_ART_EN = r"(?:the\s+|its\s+|their\s+)?(?:(?:port|ports|city|coast)\s+of\s+)?"
_GIVE_EN = (
    r"\b(?:ship(?:s|ped|ping)?|s(?:old|ells?|elling)|suppl(?:y|ies|ied|ying)|deliver(?:s|ed|ing)?|"
    r"sen(?:d|ds|t|ding)|transferr?(?:s|ed|ing)?|provid(?:e|es|ed|ing)|export(?:s|ed|ing)?|"
    r"smuggl(?:e|es|ed|ing)|mov(?:e|es|ed|ing)|fl(?:ew|own|ies|ying)|g(?:ave|iven|ives?|iving)|"
    r"hand(?:s|ed|ing)?|pass(?:es|ed|ing)?|pump(?:s|ed|ing)?|rout(?:e|es|ed|ing)|"
    r"funnel(?:l?ed|l?ing|s)?|channel(?:l?ed|l?ing|s)?|arm(?:ed|ing)|dispatch(?:es|ed|ing)?|"
    r"traffick(?:ed|ing)|transport(?:s|ed|ing)?|carr(?:y|ies|ied|ying)|load(?:s|ed|ing)?)\b"
)
_CUES: dict[str, _Cues] = {
    "en": _Cues(
        from_before=_c(rf"\b(?:from|out\s+of)\s+{_ART_EN}$"),
        to_end=_c(
            rf"\b(?:to|into|towards?|bound\s+for|destined\s+for|headed\s+(?:to|for)|"
            rf"en\s+route\s+to|for)\s+{_ART_EN}$"
        ),
        give=_c(_GIVE_EN),
        get=_c(
            r"\b(?:b(?:ought|uys?|uying)|purchas(?:e|es|ed|ing)|recei(?:ve|ves|ved|ving)|"
            r"obtain(?:s|ed|ing)?|acquir(?:e|es|ed|ing)|procur(?:e|es|ed|ing)|import(?:s|ed|ing)?|"
            r"sourc(?:e|es|ed|ing)|seek(?:s|ing)?|sought|order(?:s|ed|ing)?)\b"
        ),
        from_end=_c(rf"\bfrom\s+{_ART_EN}$"),
        ditransitive=_c(
            r"^\W*(?:(?:has|have|had|is|was|were|are|been|also|reportedly|allegedly)\s+)*"
            r"(?:sen(?:t|ds?|ding)|suppl(?:ied|ies|y|ying)|provid(?:ed|es|e|ing)|arm(?:ed|s|ing)|"
            r"g(?:ave|ives?|iving)|hand(?:ed|s|ing)|s(?:old|ells?|elling))\s+(?:the\s+)?$"
        ),
        turn_to=_c(
            r"\b(?:turn(?:s|ed|ing)?\s+to|reach(?:ed|es|ing)?\s+out\s+to|approach(?:ed|es|ing)?)"
            r"\s+(?:the\s+)?$"
        ),
        loose_from_to=True,
    ),
    "fr": _Cues(
        from_before=_c(
            r"(?:\bde|\bd'|\bdu|\bdes|\bdepuis)\s*(?:l'|la\s+|le\s+|les\s+)?(?:port\s+de\s+)?$"
        ),
        to_end=_c(
            r"(?:\bà|\bau|\baux|\bvers|\bjusqu'à|\bà\s+destination\s+de|\bpour)\s*"
            r"(?:l'|la\s+|le\s+|les\s+)?$"
        ),
        give=_c(
            r"\b(?:livr\w*|fourni\w*|envo[iy]\w*|expédi\w*|vend\w*|export\w*|transf[éè]r\w*|"
            r"achemin\w*|céd\w*|arm[ée]\w*|approvisionn\w*|transport\w*)"
        ),
        get=_c(
            r"\b(?:achet\w*|achat\w*|re[çc]\w*|obten\w*|obtenu\w*|import\w*|acqui\w*|procur\w*)"
        ),
        from_end=_c(r"(?:\bde|\bd'|\bdu|\bdes|\bauprès\s+d[eu])\s*(?:l'|la\s+|le\s+|les\s+)?$"),
    ),
    "es": _Cues(
        from_before=_c(r"\b(?:de|desde|del)\s+(?:la\s+|el\s+|los\s+|las\s+)?$"),
        to_end=_c(
            r"\b(?:a|al|hacia|hasta|con\s+destino\s+a|rumbo\s+a|para)\s+(?:la\s+|el\s+|los\s+|las\s+)?$"
        ),
        give=_c(
            r"\b(?:envi\w*|entreg\w*|suministr\w*|vend\w*|export\w*|transfi?er\w*|"
            r"proporcion\w*|traslad\w*|arm[óa]\w*|abastec\w*|transport\w*)"
        ),
        get=_c(r"\b(?:compr\w*|recib\w*|obtuv\w*|obten\w*|import\w*|adquir\w*)"),
        from_end=_c(r"\b(?:de|desde|del|a)\s+(?:la\s+|el\s+|los\s+|las\s+)?$"),
    ),
    "ru": _Cues(
        from_before=_c(r"(?:^|\s)(?:из|от|со|с)\s+$"),
        to_end=_c(r"(?:^|\s)(?:в|во|на|к|ко|до|для)\s+$"),
        give=_c(
            r"(?:постав\w*|переда\w*|отправ\w*|прода\w*|экспорт\w*|переброс\w*|достав\w*|"
            r"снабж\w*|вооруж\w*|направ\w*|переправ\w*|отгру\w*)"
        ),
        get=_c(r"(?:купи\w*|купл\w*|покупа\w*|закупа\w*|закупи\w*|получ\w*|приобре\w*|импорт\w*)"),
        from_end=_c(r"(?:^|\s)(?:у|из|от)\s+$"),
        ditransitive=_c(r"^\W*(?:\w+\s+)?(?:постав|переда|отправ|прода|достав|направ)\w*\s+$"),
    ),
    "ar": _Cues(
        from_before=_c(r"(?:^|\s)من\s*$"),
        to_end=_c(r"(?:^|\s)(?:إلى|الى|نحو|لصالح)\s*$"),
        give=_c(
            r"(?:زو[ّ]?د|يزود|تزود|تزويد|أرسل|يرسل|ترسل|إرسال|سل[ّ]?م|يسلم|تسليم|باع|يبيع|تبيع|"
            r"نقل|ينقل|تنقل|شحن|يشحن|صد[ّ]?ر|تصدير|هر[ّ]?ب|تهريب|تسليح)"
        ),
        get=_c(r"(?:اشتر|يشتري|تشتري|شراء|تلق|استلم|حصل|استورد)"),
        from_end=_c(r"(?:^|\s)من\s*$"),
    ),
}
_ALL = "all"

# Korean and Chinese mark roles with particles after the name or prepositions before it.
_KO_FROM_AFTER = re.compile(r"^(?:항|시|역|측)?(?:에서|으로부터|로부터)")
_KO_TO_AFTER = re.compile(r"^(?:항|시|역|측)?(?:으로|로|에게|에)(?!서)")
_KO_SUBJECT_AFTER = re.compile(r"^(?:이|가|은|는|측|,|·|\s)")
_KO_GIVE = re.compile(
    r"보냈|보내|보낸|제공|수출|넘겼|넘겨|넘긴|공급|전달|판매|팔았|이전|운송|실어|반입"
)
_KO_GET = re.compile(r"구매|사들|구입|수입|받았|받은|받아|도입|조달")
_ZH_FROM_BEFORE = re.compile(r"(?:从|自|由)\s*$")
_ZH_TO_END = re.compile(r"(?:到|至|往|运往|运抵|运到|送往|发往|前往|给|提供给|交给|卖给)\s*$")
_ZH_TOWARD_END = re.compile(r"(?:向|为|对)\s*$")
_ZH_GIVE = re.compile(
    r"^\s*(?:了)?(?:提供|出售|运送|输送|转让|交付|供应|出口|援助|转运|售予|转交|运送了|提供了)"
)
_ZH_GET_AFTER = re.compile(r"^\s*(?:购买|采购|获得|进口|购入|收到|获取)")


def _cues(lang: str | None) -> list[_Cues]:
    key = (lang or "").split("-")[0].casefold()
    if key in _CUES:
        return [_CUES[key]] + ([_CUES["en"]] if key != "en" else [])
    if key in {"ko", "zh", "ja"}:
        return [_CUES["en"]]
    return list(_CUES.values())


def _sentence_end(text: str) -> int:
    m = _SENTENCE_END.search(text)
    return m.start() if m else len(text)


def _direction(text: str, a: Endpoint, b: Endpoint, cues: list[_Cues], actors: bool) -> int:
    """+1 for a → b, -1 for b → a, 0 for none."""
    between = text[a.end : b.start]
    if len(between) > _MAX_BETWEEN or _SENTENCE_END.search(between):
        return 0
    if _ARROW.match(between):
        return 1
    before = text[max(0, a.start - 40) : a.start]
    after_a = text[a.end : a.end + 8]
    after_b = text[b.end : b.end + 8]
    short = len(between) <= _MAX_FROM_TO
    for c in cues:
        m = c.to_end.search(between) if c.from_before.search(before) else None
        if m and ((c.loose_from_to and short) or not between[: m.start()].strip(" ,")):
            return 1
    if (_ZH_FROM_BEFORE.search(before) and _ZH_TO_END.search(between) and short) or (
        _KO_FROM_AFTER.match(after_a) and _KO_TO_AFTER.match(after_b) and short
    ):
        return 1
    if not actors:
        return 0
    for c in cues:
        if c.give.search(between) and (
            c.to_end.search(between) or (c.ditransitive and c.ditransitive.search(between))
        ):
            return 1
        if c.get.search(between) and c.from_end.search(between):
            return -1
        if c.turn_to and c.turn_to.search(between):
            return -1
    rest = text[b.end : b.end + _sentence_end(text[b.end :])]
    if _ZH_TOWARD_END.search(between) and _ZH_GIVE.match(text[b.end :]) and len(between) <= 3:
        return 1
    if _ZH_TO_END.search(between) and any(
        g in between for g in ("提供", "出售", "运送", "输送", "转让", "交付", "卖")
    ):
        return 1
    if _ZH_FROM_BEFORE.search(between) and _ZH_GET_AFTER.match(text[b.end :]):
        return -1
    ko_subject = _KO_SUBJECT_AFTER.match(after_a) and len(between) <= 20
    if ko_subject and _KO_TO_AFTER.match(after_b) and _KO_GIVE.search(rest):
        return 1
    if ko_subject and _KO_FROM_AFTER.match(after_b) and _KO_GET.search(rest):
        return -1
    # Arabic verb first: "زودت إيران الحوثيين" (supplied Iran the Houthis), "أرسلت A ... إلى B"
    ar = _CUES["ar"]
    if ar.give.search(text[max(0, a.start - 12) : a.start]) and (
        not between.strip() or ar.to_end.search(between)
    ):
        return 1
    return 0


def flows(text: str, endpoints: Sequence[Endpoint], lang: str | None) -> list[tuple[str, str]]:
    """Directed (source key, destination key) pairs the text states, in text order, no repeats."""
    cues = _cues(lang)
    ordered = sorted(endpoints, key=lambda e: (e.start, e.end))
    out: list[tuple[str, str]] = []

    def consider(seq: list[Endpoint], actors: bool) -> None:
        for a, b in itertools.pairwise(seq):
            if a.key == b.key:
                continue
            d = _direction(text, a, b, cues, actors)
            pair = (a.key, b.key) if d > 0 else (b.key, a.key) if d < 0 else None
            if pair and pair not in out:
                out.append(pair)

    consider([e for e in ordered if not e.is_place], actors=True)
    consider(ordered, actors=False)
    return out
