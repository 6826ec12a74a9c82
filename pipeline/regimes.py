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


def _alias_pattern(alias: str) -> str:
    if _NON_SPACED.search(alias):  # scripts without reliable word boundaries: substring match
        return re.escape(alias)
    if _CYRILLIC.search(alias):
        # Russian declines names (Ливия, Ливии, Ливией): match each word's stem plus any ending.
        words = []
        for word in alias.split():
            stem = word.rstrip(_RU_ENDINGS)
            words.append(re.escape(stem if len(stem) >= 3 else word) + r"\w*")
        return r"(?<!\w)" + r"\s+".join(words)
    return rf"(?<!\w){re.escape(alias)}(?!\w)"


@dataclass(frozen=True, slots=True)
class RegimeBook:
    regimes: Mapping[str, Regime]
    _patterns: tuple[tuple[str, re.Pattern[str]], ...]

    def get(self, key: str) -> Regime | None:
        return self.regimes.get(key)

    def detect(self, text: str) -> list[tuple[str, int]]:
        """Regime keys mentioned in ``text`` with their mention counts, most mentioned first."""
        counts: Counter[str] = Counter()
        for key, pattern in self._patterns:
            n = len(pattern.findall(text))
            if n:
                counts[key] += n
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
    patterns = tuple(
        (
            r.key,
            re.compile(
                "|".join(_alias_pattern(a) for a in sorted(set(r.aliases), key=len, reverse=True)),
                re.IGNORECASE,
            ),
        )
        for r in regimes.values()
        if r.aliases
    )
    return RegimeBook(regimes=regimes, _patterns=patterns)


@lru_cache(maxsize=8)
def load_regimes(path: str | Path) -> RegimeBook:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read the regimes file: {err}") from err
    return _build(data, path.name)
