"""Name matching engine behind :class:`pipeline.knowledge.designations.DesignationIndex`.

Designated names are compiled once into canonical tokens; the text is tokenised once and only the
*anchor* tokens of each name (its rarest tokens, their joined forms and, for capitalised words, a
one-deletion neighbourhood for typos) are looked up in dicts. Only the names that an anchor hits are
verified, on short spans of text around the hit, so the cost grows with the text, not with
text x list. Nothing here knows the XML; :mod:`pipeline.knowledge.designations` feeds it :class:`NameSpec`.

Canonical tokens fold accents and case and merge common transliteration variants (kh/k, q/k, ch/j,
ou/u, e/a, o/u, y/i, doubled letters, ``abdul``/``abd al``...), so "Muhammad"/"Mohamed",
"Chol"/"Chul", "Qaida"/"Qaeda" compare equal. Spelling slips are allowed only on long words (one
edit from 5 letters, 7 in two-word names; two edits from 9), one slip per name (two from four
words); numbers and short words must be exact, which is what keeps "Kim Song Chon" from matching
KIM SONG CHOL. Person names match in any word order; entity names in their own order.

Names that say little on their own need *context* within 15 words (regime words such as
"Pyongyang" or "Mogadishu", maritime words for ships, or another designation of the same regime
in the text): names made only of common words ("Ministry of Defence"), one-word names of the
"Al-Shabaab" kind, two-word low-quality aliases, and short vessel names ("Jie Shun").
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["MIN_SCORE", "Hit", "NameMatcher", "NameSpec", "canon", "tokenize"]

log = logging.getLogger(__name__)

MIN_SCORE = 0.75
LOW_QUALITY = 0.8  # factor for aliases the list marks as "Low" quality
NO_CONTEXT = 0.7  # names that need context (all common words, vessels) found without it
SINGLE_NO_CONTEXT = 0.85  # a one-word name without context: 0.8 x 0.85 falls under MIN_SCORE
WITH_CONTEXT = 1.0
FUZZY_ON_COMMON = 0.8  # a spelling slip where every exactly matched word is a common one
SPECIFICITY = {1: 0.8, 2: 0.95}  # by number of content tokens; 3 or more: 1.0
CONTEXT_WINDOW = 15

WORD_RE = re.compile(r"[^\W_]+(?:['’ʼ‘`´][^\W_]+)*")
CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_APOSTROPHES = str.maketrans("", "", "'’ʼ‘`´")
_SPECIAL = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ı": "i"})


def _words(text: str) -> list[str]:
    return text.split()


_DIGRAPHS = [
    pair.split(":")
    for pair in _words(
        "kh:k gh:g dh:d th:t ph:f dj:j ch:j ck:k q:k c:k ou:u oo:u ee:i eo:o eu:u ae:a"
    )
]
_DOUBLE_RE = re.compile(r"(.)\1+")
_ABD_RE = re.compile(r"^abd[au]l(?=[a-z]{3})|^abd[au]l$")
PARTICLES = frozenset(_words("al el ul bin ibn bint the of and de du des la le da"))
_PARTICLE_FORMS = frozenset(f for p in PARTICLES for f in (p, p.capitalize(), p.upper()))
_ABBREVIATIONS = dict(
    pair.split(":", 1)
    for pair in _words(
        "corp:corporation co:company ltd:limited intl:international shpg:shipping dept:department "
        "natl:national"
    )
)
_LEAD_PARTICLE_RE = re.compile(r"(?i)(?<![^\W_])(?:al|el|ul|bin|ibn)[-\s]+$")
_LEGAL_SUFFIXES = frozenset(_words("co company corp corporation ltd limited inc llc plc jv"))

# Words so common in names that a name made only of them says little on its own.
_COMMON_WORDS = (
    "company co corp corporation ltd limited inc llc jv plc group general international trading "
    "trade bank banking shipping marine maritime industry industries development foreign national "
    "ministry department bureau office committee commission administration force forces army "
    "military central state islamic republic people peoples korea korean democratic party workers "
    "front movement organization organisation foundation relief society association union council "
    "brigade battalion regiment special purpose strategic science academy energy technology "
    "insurance credit investment authority holdings services oil petroleum freight logistics "
    "exchange money branch new first global united world east west north south joint venture "
    "defence defense security intelligence affairs agency institute center centre service "
    "rocket rockets missile missiles "
    "muhammad mohammed ahmad ahmed ali abdul abd abdullah rahman omar umar hassan hussein "
    "ibrahim ismail yusuf khalid mahmoud mustafa abu haji mullah kim ri lee pak park choe"
)
# Frequent English words that are also name parts once canonical ("said" is "Sa'id"): common,
# and never used to look a name up when it has any other word.
_ENGLISH_WORDS = (
    "said says say told added according also after again all back been before being both but "
    "can come could day did down even every from get good great have her here him his how into "
    "just know last like long made make man many may more most much must new now only other our "
    "out over own part same see she should since some song still such take than that their them "
    "then there these they this those through time under upon very was way well were what when "
    "where which while who will with would year years young your star sea hope light river"
)

# Words that, within CONTEXT_WINDOW tokens, confirm a name that needs context ("north_korea" is
# the two words "North Korea": "South Korea's Ministry of Defence" is not the DPRK's).
_REGIME_CONTEXT = {
    "dprk": "dprk pyongyang north_korea north_korean nampo kpa jong_un komid",
    "iran": "iran iranian tehran irgc",
    "libya": "libya libyan tripoli benghazi",
    "yemen": "yemen yemeni houthi huthi sanaa",
    "sudan": "sudan sudanese darfur khartoum",
    "south_sudan": "sudan juba",
    "somalia": "somalia somali shabaab mogadishu",
    "car": "central african bangui",
    "drc": "congo congolese kinshasa kivu goma ituri",
    "haiti": "haiti haitian port prince",
    "iraq": "iraq iraqi baghdad",
    "lebanon": "lebanon lebanese hezbollah hizbullah beirut",
    "isil_aq": "qaida qaeda isil isis daesh jihadist jihadists militant militants terrorist "
    "terrorists terrorism insurgents sahel syria iraq",
    "taliban": "taliban afghan kabul",
    "mali": "mali malian bamako timbuktu",
}
_MARITIME_CONTEXT = (
    "vessel vessels ship ships tanker tankers freighter cargo carrier imo flag "
    "flagged port crew sailed docked anchored transponder ais transfer coal oil "
    "captain master hull"
)


@lru_cache(maxsize=131072)
def canon(word: str) -> str:
    """Canonical form of one word: folded, lower case, common transliteration variants merged."""
    w = word.lower()
    if not w.isascii():
        if w.endswith("’s"):
            w = w[:-2]
        w = w.translate(_SPECIAL)
        w = "".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c))
        w = w.translate(_APOSTROPHES)
        if not w.isascii():
            return w  # other scripts: folded, compared as they are
    if "'" in w or "`" in w:
        w = w[:-2] if w.endswith("'s") else w
        w = w.replace("'", "").replace("`", "")
    if w.isdigit():
        return w
    w = _ABBREVIATIONS.get(w, w)
    for old, new in _DIGRAPHS:
        if old in w:
            w = w.replace(old, new)
    w = w.replace("y", "i").replace("e", "a").replace("o", "u").replace("ai", "a")
    if len(set(w)) < len(w):  # some letter repeats: collapse doubled letters
        w = _DOUBLE_RE.sub(r"\1", w)
    if len(w) > 3 and w[-1] == "h" and w[-2] in "aiu":
        w = w[:-1]
    return _ABD_RE.sub("abd", w) if w.startswith("abd") else w


ENGLISH = frozenset(canon(w) for w in _ENGLISH_WORDS.split())
COMMON = frozenset(canon(w) for w in _COMMON_WORDS.split()) | ENGLISH


def _joined(tokens: Iterable[str]) -> str:
    """Tokens written as one word; a letter doubled across a joint counts once."""
    out = ""
    for t in tokens:
        out += t[1:] if out and t and out[-1] == t[0] else t
    return out


def tokenize(text: str) -> tuple[list[str], list[int], list[int], list[str]]:
    """Content tokens of ``text`` (particles dropped): canonical forms, starts, ends, raw words."""
    canons: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    raws: list[str] = []
    for m in WORD_RE.finditer(text):
        raw = m.group()
        if raw in _PARTICLE_FORMS:
            continue
        c = canon(raw)
        if c:
            canons.append(c)
            starts.append(m.start())
            ends.append(m.end())
            raws.append(raw)
    return canons, starts, ends, raws


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _within_one_edit(a: str, b: str) -> bool:
    """True when one substitution, insertion, deletion or adjacent swap turns ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    if len(a) - len(b) > 1:
        return False
    i = 0
    while i < len(b) and a[i] == b[i]:
        i += 1
    if len(a) != len(b):
        return a[i + 1 :] == b[i:]
    if a[i + 1 :] == b[i + 1 :]:  # one substitution (or none)
        return True
    return a[i + 2 :] == b[i + 2 :] and a[i : i + 2] == b[i : i + 2][::-1]  # adjacent swap


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def token_similarity(a: str, b: str, min_len: int = 5) -> float:
    """1.0 equal; 0.9 one edit (both >= ``min_len`` letters); 0.85 two edits (both >= 9)."""
    if a == b:
        return 1.0
    shortest = min(len(a), len(b))
    if shortest < min_len or not (a.isalpha() and b.isalpha()):
        return 0.0
    if _within_one_edit(a, b):
        return 0.9
    return 0.85 if shortest >= 9 and _edit_distance(a, b, 2) <= 2 else 0.0


@dataclass(frozen=True, slots=True)
class NameSpec:
    """One name to find: ``owner`` is the caller's id for the designation it belongs to."""

    owner: int
    name: str
    low_quality: bool = False
    person: bool = False  # word order is free for people ("Jong Un Kim")
    regime: str = ""
    vessel: bool = False  # a ship's name needs maritime or regime context


@dataclass(frozen=True, slots=True)
class Hit:
    owner: int
    name: str
    score: float
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Name:
    spec: NameSpec
    tokens: tuple[str, ...]
    joined: frozenset[str]  # joined forms that count as a whole-name match
    factor: float
    caps: int  # 0: any case; 1: initial capital needed; 2: all capitals needed
    context: float  # factor when no context is found nearby (1.0: context not needed)


class NameMatcher:
    """Token index over many names; :meth:`find` returns the names present in a text."""

    def __init__(self, specs: Iterable[NameSpec], *, min_score: float = MIN_SCORE) -> None:
        self.min_score = min_score
        self._names: list[_Name] = []
        self._cjk: list[tuple[str, NameSpec]] = []
        self._exact: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._fuzzy: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self._joins: dict[str, list[int]] = defaultdict(list)  # joined forms: enough on their own
        self._slots: list[int] = []  # per name: how many anchor words must be found
        self._context = {k: _context_set(v) for k, v in _REGIME_CONTEXT.items()}
        self._maritime = _context_set(_MARITIME_CONTEXT)
        specs = list(specs)
        self._regime_of = {spec.owner: spec.regime for spec in specs}
        compiled = [name for spec in specs for name in self._compile(spec)]

        df: dict[str, int] = defaultdict(int)
        for name in compiled:
            for tok in set(name.tokens):
                df[tok] += 1
        for name in compiled:
            self._add(name, df)
        log.debug(
            "name index: %d names, %d anchors, %d CJK names",
            len(self._names),
            len(self._exact),
            len(self._cjk),
        )

    def __len__(self) -> int:
        return len(self._names) + len(self._cjk)

    def _compile(self, spec: NameSpec) -> list[_Name]:
        text = " ".join(spec.name.split())
        if CJK_RE.search(text):
            if len(text) >= 3:
                self._cjk.append((unicodedata.normalize("NFKC", text), spec))
            return []
        canons, _, _, raws = tokenize(text)
        out: list[_Name] = []
        if len(canons) > 2 and raws[-1].lower() in _LEGAL_SUFFIXES:
            # "Chonmyong Shipping" names CHONMYONG SHIPPING CO as well.
            short = " ".join(raws[:-1])
            out = self._compile(
                NameSpec(spec.owner, short, spec.low_quality, spec.person, spec.regime)
            )
        tokens = tuple(canons)
        if not tokens or (len(tokens) == 1 and len(tokens[0]) < 4):
            return out  # nothing left, or a single word under four letters: too ambiguous
        n = len(tokens)
        factor = SPECIFICITY.get(n, 1.0) * (LOW_QUALITY if spec.low_quality else 1.0)
        caps = 0
        if n == 1:  # one word: capitalised in the text; a bare short acronym in capitals
            caps = 2 if len(tokens[0]) <= 5 and raws[0].isupper() and text == raws[0] else 1
        joined = {_joined(tokens)}
        if spec.person:
            joined.update(_joined(tokens[i:] + tokens[:i]) for i in range(1, n))
        context = 1.0
        if (n <= 3 and all(t in COMMON for t in tokens)) or (
            spec.vessel and sum(t.isalpha() for t in tokens) < 3
        ):
            context = NO_CONTEXT
        elif n == 1 and (len(WORD_RE.findall(text)) > 1 or (len(tokens[0]) < 6 and caps != 2)):
            context = SINGLE_NO_CONTEXT  # "Al-Shabab" is also a football club; "KOMID" is not
        elif spec.low_quality and n <= 2:
            context = NO_CONTEXT  # "Haji Mudir" is a low-quality alias made of common words
        return [*out, _Name(spec, tokens, frozenset(joined), factor, caps, context)]

    def _add(self, name: _Name, df: dict[str, int]) -> None:
        nid = len(self._names)
        self._names.append(name)
        ranked = sorted(set(name.tokens), key=lambda t: (t in ENGLISH, t in COMMON, df[t], -len(t)))
        if ranked[0] not in COMMON:  # "Abu Hamza" is looked up by "Hamza" only
            ranked = [t for t in ranked if t not in COMMON]
        elif ranked[0] not in ENGLISH:  # "Khalid al-Said" by "Khalid", never by "said"
            ranked = [t for t in ranked if t not in ENGLISH]
        # slot 0/1: one of the (up to) two rarest words, both needed when there are two;
        # joined forms ("Kim Jongun", "Mooyok Bank") are enough on their own
        joined = set(name.joined)
        joined.update(_joined(name.tokens[i : i + 2]) for i in range(len(name.tokens) - 1))
        for key in joined:
            self._joins[key].append(nid)
        for slot, anchor in enumerate(ranked[:2]):
            self._exact[anchor].append((nid, slot))
            if len(anchor) >= 5 and anchor.isalpha():
                for key in {anchor} | _deletions(anchor):
                    self._fuzzy[key].append((nid, slot))
        self._slots.append(min(2, len(ranked)))

    def find(self, text: str) -> list[Hit]:
        """Every name found in ``text`` scoring at least ``min_score``, best per owner and place."""
        canons, starts, ends, raws = tokenize(text)
        quoted = [
            text[b - 1 : b] in _QUOTES and text[e : e + 1] in _QUOTES if b else False
            for b, e in zip(starts, ends, strict=True)
        ]
        hits: dict[tuple[int, int, int], Hit] = {}
        waiting: list[tuple[str, Hit]] = []  # good enough but for the context they lack
        covered: tuple[int, int, int] = (-1, -1, -1)  # (name, first, last) of the last success
        for nid, i in sorted(self._candidates(canons, raws)):
            if covered[0] == nid and covered[1] <= i <= covered[2]:
                continue  # this occurrence of the name is already verified
            name = self._names[nid]
            found = self._verify(name, canons, raws, quoted, i)
            if found is None:
                continue
            score, s, e = found
            covered = (nid, s, e)
            score *= name.factor
            if not self._whole_word(text, starts[s], ends[e]) or score < self.min_score:
                continue
            start = starts[s]
            lead = _LEAD_PARTICLE_RE.search(text[max(0, start - 8) : start])
            if lead:  # report "Al-Qaida", not "Qaida"
                start -= len(lead.group())
            hit = Hit(name.spec.owner, name.spec.name, round(score, 4), start, ends[e])
            if name.context < 1.0 and not self._has_context(name, canons, s, e):
                waiting.append((name.spec.regime, hit))
                hit = Hit(hit.owner, hit.name, round(score * name.context, 4), start, ends[e])
                if hit.score < self.min_score:
                    continue
            key = (hit.owner, hit.start, hit.end)
            if key not in hits or hits[key].score < hit.score:
                hits[key] = hit
        if waiting:  # another designation of the same regime in the text is context enough
            regimes = {self._regime_of[h.owner] for h in hits.values()}
            for regime, hit in waiting:
                key = (hit.owner, hit.start, hit.end)
                if regime in regimes and (key not in hits or hits[key].score < hit.score):
                    hits[key] = hit
        result = _drop_overlaps(list(hits.values()))
        result.extend(self._find_cjk(text))
        return sorted(result, key=lambda h: (h.start, -h.score, h.owner))

    def _candidates(self, canons: Sequence[str], raws: Sequence[str]) -> set[tuple[int, int]]:
        """(name, token) pairs worth verifying: a joined form of the name at the token, or its
        anchor words (exact or one slip away) close together, with all but one word in reach."""
        exact, fuzzy, joins, names = self._exact, self._fuzzy, self._joins, self._names
        out: set[tuple[int, int]] = set()
        found: dict[int, list[tuple[int, int]]] = defaultdict(list)  # name -> [(token, slot)]
        total = len(canons)
        for i, c in enumerate(canons):
            hits = exact.get(c)
            if hits:
                for nid, slot in hits:
                    found[nid].append((i, slot))
            elif len(c) >= 5 and raws[i][0].isupper() and c not in ENGLISH and c.isalpha():
                for key in (c, *_deletions(c)):  # one slip away from an anchor word
                    for nid, slot in (
                        *fuzzy.get(key, ()),
                        *(exact.get(key, ()) if key is not c else ()),
                    ):
                        found[nid].append((i, slot))
            for nid in joins.get(c, ()):
                out.add((nid, i))
            if i + 1 < total and raws[i][0].isupper():  # "Mooyok Bank", "Kim Jongun"
                nxt = canons[i + 1]
                for nid in joins.get(c + nxt[1:] if c[-1] == nxt[0] else c + nxt, ()):
                    out.add((nid, i))
        for nid, places in found.items():
            name = names[nid]
            n = len(name.tokens)
            by_slot: tuple[list[int], list[int]] = ([], [])
            for i, slot in places:  # places come in text order, so both lists are sorted
                by_slot[slot].append(i)
            for i, slot in places:
                if self._slots[nid] == 2:  # both rare words are needed, near each other
                    other = by_slot[1 - slot]
                    k = bisect.bisect_left(other, i - n - 1)
                    if k == len(other) or other[k] > i + n + 1:
                        continue
                near = canons[max(0, i - n - 1) : i + n + 2]
                missing = [t for t in name.tokens if t not in near]
                if len(missing) <= 1 and (not missing or len(missing[0]) >= 5):
                    out.add((nid, i))
        return out

    def _verify(
        self,
        name: _Name,
        canons: Sequence[str],
        raws: Sequence[str],
        quoted: Sequence[bool],
        i: int,
    ) -> tuple[float, int, int] | None:
        """Best (score, first token, last token) of a span around token ``i`` that spells ``name``."""
        n, total = len(name.tokens), len(canons)
        best: tuple[float, int, int] | None = None
        for length in range(max(1, n - 2), n + 3):
            for s in range(max(0, i - length + 1), min(i, total - length) + 1):
                span = canons[s : s + length]
                if _joined(span) in name.joined:
                    score = 1.0 if length == n else 0.97
                elif length == n:
                    score = _assign(name.tokens, span, ordered=not name.spec.person)
                elif length == n + 1 and name.spec.person and any(quoted[s + 1 : s + length - 1]):
                    # Jimmy "Barbecue" Cherizier: the quoted nickname is skipped
                    k = s + 1 + quoted[s + 1 : s + length - 1].index(True)
                    score = _assign(
                        name.tokens, [*canons[s:k], *canons[k + 1 : s + length]], ordered=False
                    )
                else:
                    continue
                if (
                    score
                    and _caps_ok(name.caps, raws[s : s + length])
                    and (best is None or score > best[0])
                ):
                    best = (score, s, s + length - 1)
        return best

    def _has_context(self, name: _Name, canons: Sequence[str], s: int, e: int) -> bool:
        words = self._context.get(name.spec.regime, frozenset())
        if name.spec.vessel:
            words = words | self._maritime
        lo, hi = max(0, s - CONTEXT_WINDOW), e + 1 + CONTEXT_WINDOW
        window = [*canons[lo:s], "", *canons[e + 1 : hi]]
        pairs = (f"{a}_{b}" for a, b in itertools.pairwise(window))
        return any(w in words for w in window) or any(p in words for p in pairs)

    @staticmethod
    def _whole_word(text: str, start: int, end: int) -> bool:
        """Refuse a name glued by a hyphen to a capitalised or short word ("Son Min-jae")."""
        after = re.match(r"-([^\W_]+)", text[end : end + 40])
        before = re.search(r"([^\W_]+)-$", text[max(0, start - 40) : start])
        return not any(
            m
            and m.group(1).lower() not in PARTICLES
            and (len(m.group(1)) <= 3 or m.group(1)[0].isupper())
            for m in (after, before)
        )

    def _find_cjk(self, text: str) -> list[Hit]:
        if not self._cjk or not CJK_RE.search(text):
            return []
        hits = []
        for needle, spec in self._cjk:
            pos = text.find(needle)
            while pos != -1:
                score = round(1.0 * (LOW_QUALITY if spec.low_quality else 1.0), 4)
                if score >= self.min_score:
                    hits.append(Hit(spec.owner, spec.name, score, pos, pos + len(needle)))
                pos = text.find(needle, pos + 1)
        return hits


_QUOTES = frozenset("\"'“”‘’«»")


def _context_set(words: str) -> frozenset[str]:
    """Canonical context words; ``north_korea`` stands for the pair of words."""
    return frozenset("_".join(canon(part) for part in w.split("_")) for w in words.split())


def _assign(wanted: Sequence[str], span: Sequence[str], *, ordered: bool) -> float:
    """Length-weighted similarity of ``span`` to ``wanted``; 0.0 unless every token is matched.

    At most one word may be misspelt (two in names of four words or more); slips need longer
    words in two-word names (7 letters) than in longer ones (5), and count for less when every
    exactly matched word is a common one ("Mohamed Belkacem")."""
    n = len(wanted)
    min_len, slips = (7 if n <= 2 else 5), (2 if n >= 4 else 1)
    pairs: list[tuple[str, float]] = []
    if ordered:
        for a, b in zip(wanted, span, strict=True):
            sim = 1.0 if a == b else token_similarity(a, b, min_len)
            if not sim:
                return 0.0
            pairs.append((a, sim))
    else:
        free = list(span)
        rest = []
        for a in wanted:
            if a in free:
                free.remove(a)
                pairs.append((a, 1.0))
            else:
                rest.append(a)
        if len(rest) > slips:
            return 0.0
        for a in rest:
            sims = [token_similarity(a, b, min_len) for b in free]
            k = max(range(len(free)), key=sims.__getitem__)
            if not sims[k]:
                return 0.0
            pairs.append((a, sims[k]))
            free.pop(k)
    if sum(sim < 1.0 for _, sim in pairs) > slips:
        return 0.0
    score = sum(sim * len(a) for a, sim in pairs) / sum(len(a) for a in wanted)
    if score < 1.0 and all(a in COMMON for a, sim in pairs if sim == 1.0):
        score *= FUZZY_ON_COMMON
    return score


def _caps_ok(caps: int, raws: Sequence[str]) -> bool:
    if caps == 0:
        return True
    word = raws[-1]
    if caps == 2:
        return word.isupper()
    return word[0].isupper() or not word[0].isalpha() or word[0].lower() == word[0].upper()


def _drop_overlaps(hits: list[Hit]) -> list[Hit]:
    """For each owner keep the best hit among those whose spans overlap."""
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (-h.score, -(h.end - h.start), h.start)):
        if not any(k.owner == hit.owner and k.start < hit.end and hit.start < k.end for k in kept):
            kept.append(hit)
    return kept
