"""Finding names in text, in every script the pipeline reads: the matcher behind places and actors.

An alias is matched

* in Latin and other spaced scripts, on whole words, spaces and hyphens interchangeable ("Kim
  Jong-un" = "Kim Jong Un"); an alias written with a capital must start with one in the text
  ("Barbecue" the gang leader, not a barbecue), the rest of it in any case;
* in Cyrillic, by stem: one final vowel, й or ь dropped when at least four letters remain, then up
  to three letters of ending, so that declined forms match ("России", "Россией" for "Россия");
* in Arabic, as a word that may carry the clitics و ف ب ل ك in front and the adjective and plural
  endings ي ية يين يون after ("والحوثيين", "للحوثيين", "إيرانية"), but not run into another word
  ("مصرف", bank, is not "مصر", Egypt);
* in Chinese, Japanese and Korean, as a substring (particles attach to the name: 북한이, 북한에).

:meth:`Gazetteer.find` returns the longest non-overlapping matches in text order, each with its
span, so callers can read the words around a name. Pure; compiled once per gazetteer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["NON_SPACED", "Gazetteer", "Mention", "compile_alias", "normalise"]

NON_SPACED = re.compile(
    r"[\u0600-\u06ff\u0750-\u077f\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u4e00-\u9fff\uac00-\ud7af]"
)
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_RU_ENDINGS = "аяиыйеоуьюёь"
_SEP = r"[\s\-\u2010\u2011\u2012\u2013\u00a0]+"


@dataclass(frozen=True, slots=True)
class Mention:
    """``text[start:end]`` names the entry ``key`` (through ``alias``)."""

    key: str
    alias: str
    start: int
    end: int
    text: str


_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f]")
_AR_LETTER = r"[\u0600-\u06ff\u0750-\u077f]"


def _word_pattern(word: str, *, stem: bool) -> str:
    if stem:
        root = word[:-1] if word[-1:] in _RU_ENDINGS else word
        if len(root) >= 4:
            return re.escape(root) + r"\w{0,3}"
    return re.escape(word)


def _arabic_pattern(alias: str) -> str:
    forms = [re.escape(alias)]
    if alias.startswith("ال"):  # li + al- contracts: الحوثيين -> للحوثيين
        forms.append(re.escape("لل" + alias[2:]))
    return (
        rf"(?<!{_AR_LETTER})(?:[وفبلك]{{1,2}})?(?:{'|'.join(forms)})"
        rf"(?:يين|يون|ية|ي)?(?!{_AR_LETTER})"
    )


def normalise(text: str) -> str:
    """The form of a text :meth:`Gazetteer.find` expects (NFKC): spans refer to this string."""
    return unicodedata.normalize("NFKC", text)


def compile_alias(alias: str) -> re.Pattern[str]:
    """The pattern that finds ``alias`` in text (see the module docstring)."""
    alias = normalise(" ".join(alias.split()))
    if _ARABIC.search(alias):
        return re.compile(_arabic_pattern(alias))
    if NON_SPACED.search(alias):
        return re.compile(re.escape(alias), re.IGNORECASE)
    stem = bool(_CYRILLIC.search(alias))
    body = _SEP.join(_word_pattern(w, stem=stem) for w in re.split(_SEP, alias) if w)
    first = re.escape(alias[0])
    if alias[0].isupper() and body.startswith(first):
        # the first letter as written, the rest in any case: "Barbecue", not "barbecue"
        pattern = first + f"(?i:{body[len(first) :]})"
    else:
        pattern = f"(?i:{body})"
    return re.compile(rf"(?<!\w){pattern}(?!\w)")


@dataclass(frozen=True, slots=True)
class _Entry:
    key: str
    alias: str
    pattern: re.Pattern[str]
    probe: str  # a lower-case piece that must occur in the folded text for a match to be possible


class Gazetteer:
    """Aliases of many entries, matched together; see :func:`compile_alias`."""

    def __init__(self, entries: Iterable[tuple[str, str]]) -> None:
        self._entries: list[_Entry] = []
        seen: set[tuple[str, str]] = set()
        for key, alias in entries:
            alias = " ".join(str(alias).split())
            if not alias or (key, alias.casefold()) in seen:
                continue
            seen.add((key, alias.casefold()))
            probe = re.split(_SEP, normalise(alias))[0].casefold()
            if _CYRILLIC.search(probe):
                probe = probe[:3]
            elif _ARABIC.search(probe):
                probe = probe.removeprefix("ال")[:3] or probe
            self._entries.append(_Entry(key, alias, compile_alias(alias), probe))

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, text: str) -> list[Mention]:
        """The longest non-overlapping mentions in ``text`` (already :func:`normalise`-d: spans
        refer to it), in text order."""
        if not text:
            return []
        folded = text.casefold()
        found: list[Mention] = []
        for entry in self._entries:
            if entry.probe not in folded:
                continue
            for m in entry.pattern.finditer(text):
                found.append(Mention(entry.key, entry.alias, m.start(), m.end(), m.group()))
        found.sort(key=lambda m: (-(m.end - m.start), m.start))
        kept: list[Mention] = []
        for mention in found:
            if not any(k.start < mention.end and mention.start < k.end for k in kept):
                kept.append(mention)
        return sorted(kept, key=lambda m: m.start)
