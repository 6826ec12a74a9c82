"""The UN sanctions regimes knowledge base (``config/regimes.yaml``) and regime tagging of text."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError

__all__ = ["Regime", "RegimeBook", "load_regimes"]

_NON_SPACED = re.compile(r"[\u0600-\u06ff\u1100-\u11ff\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True, slots=True)
class Regime:
    key: str
    name: str
    committee: str
    url: str
    resolutions: tuple[int, ...]
    measures: tuple[str, ...]
    aliases: tuple[str, ...]
    active: bool = True


_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_RU_ENDINGS = "аяиыйеоуьюё"
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _tokens(text: str) -> list[str]:
    return _NON_WORD.sub(" ", text.casefold()).split()


@dataclass(frozen=True, slots=True)
class _Alias:
    regime: str
    words: tuple[str, ...]
    stems: bool  # Cyrillic: each word matches by stem (Russian declension)

    def matches(self, tokens: list[str], start: int) -> bool:
        if start + len(self.words) > len(tokens):
            return False
        if self.stems:
            return all(tokens[start + i].startswith(w) for i, w in enumerate(self.words))
        return all(tokens[start + i] == w for i, w in enumerate(self.words))


def _make_alias(regime: str, alias: str) -> _Alias | str:
    """A word-sequence alias, or the plain string for scripts matched as substrings."""
    if _NON_SPACED.search(alias):
        return alias.casefold()
    words = tuple(_tokens(alias))
    if _CYRILLIC.search(alias):
        words = tuple(
            w.rstrip(_RU_ENDINGS) if len(w.rstrip(_RU_ENDINGS)) >= 3 else w for w in words
        )
        return _Alias(regime, words, stems=True)
    return _Alias(regime, words, stems=False)


@dataclass(frozen=True, slots=True)
class RegimeBook:
    regimes: Mapping[str, Regime]
    _by_first: Mapping[str, tuple[_Alias, ...]]
    _substrings: tuple[tuple[str, str], ...]

    def get(self, key: str) -> Regime | None:
        return self.regimes.get(key)

    def detect(self, text: str) -> list[tuple[str, int]]:
        """Regime keys mentioned in ``text`` with their mention counts, most mentioned first.

        Aliases are matched on whole words (Latin scripts; Cyrillic by stem, for declension) or as
        substrings (Arabic, CJK, Hangul). One pass over the words with a dictionary lookup per word.
        """
        if not text:
            return []
        counts: Counter[str] = Counter()
        tokens = _tokens(text)
        by_first = self._by_first
        for i, token in enumerate(tokens):
            whole = by_first.get(token)
            stem = token[:3]
            short = by_first.get(stem) if stem != token else None
            if whole is None and short is None:
                continue  # most words start no alias: no set, no loop
            seen: set[str] = set()
            for group in (whole, short):
                for alias in group or ():
                    if alias.regime not in seen and alias.matches(tokens, i):
                        counts[alias.regime] += 1
                        seen.add(alias.regime)
        folded = text.casefold()
        for regime, needle in self._substrings:
            n = folded.count(needle)
            if n:
                counts[regime] += n
        return counts.most_common()


def _build(data: Mapping[str, Any], source: str) -> RegimeBook:
    regimes: dict[str, Regime] = {}
    raw = data.get("regimes")
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{source}: regimes: must be a non-empty mapping")
    for key, item in raw.items():
        if not isinstance(item, Mapping):
            raise ConfigError(f"{source}: regimes.{key}: must be a mapping")
        try:
            regimes[key] = Regime(
                key=key,
                name=str(item["name"]),
                committee=str(item.get("committee", "")),
                url=str(item.get("url", "")),
                resolutions=tuple(int(r) for r in item.get("resolutions") or ()),
                measures=tuple(str(m) for m in item.get("measures") or ()),
                aliases=tuple(str(a) for a in item.get("aliases") or ()),
                active=item.get("status", "active") != "ended",
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{source}: regimes.{key}: {type(err).__name__}: {err}") from err
        if not regimes[key].url.startswith("https://"):
            raise ConfigError(f"{source}: regimes.{key}.url: must be an https URL")
    by_first: dict[str, list[_Alias]] = {}
    substrings: list[tuple[str, str]] = []
    for r in regimes.values():
        for raw in sorted(set(r.aliases)):
            alias = _make_alias(r.key, raw)
            if isinstance(alias, str):
                substrings.append((r.key, alias))
            elif alias.words:
                first = alias.words[0][:3] if alias.stems else alias.words[0]
                by_first.setdefault(first, []).append(alias)
    return RegimeBook(
        regimes=regimes,
        _by_first={k: tuple(v) for k, v in by_first.items()},
        _substrings=tuple(substrings),
    )


@lru_cache(maxsize=8)
def load_regimes(path: str | Path) -> RegimeBook:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the regimes file: {err}") from err
    return _build(data, path.name)
