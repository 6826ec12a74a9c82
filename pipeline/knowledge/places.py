"""The places gazetteer (``config/places.yaml``): ports, border crossings, seas and straits, airstrips,
launch and test sites, read once into frozen records and found in text in every supported language.

Strict: an unknown key, a missing name, an unknown type, an id or an alias listed twice is a
:class:`~pipeline.errors.ConfigError` naming the file, the entry and the key. A missing file is an
error too, unless the caller says it may be absent (a config folder made before places existed), in
which case no place is ever found.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.knowledge.gazetteer import Gazetteer, Mention

__all__ = ["PLACE_TYPES", "Place", "PlaceBook", "load_places", "parse_places"]

log = logging.getLogger(__name__)

PLACE_TYPES = frozenset(
    {
        "port",
        "anchorage",
        "border-crossing",
        "sea",
        "strait",
        "canal",
        "airbase",
        "airstrip",
        "airport",
        "city",
        "region",
        "launch-site",
        "test-site",
        "depot",
        "mine",
    }
)
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_KEYS = frozenset({"id", "name", "type", "country", "aliases", "note"})


@dataclass(frozen=True, slots=True)
class Place:
    id: str
    name: str  # English, as alerts show it
    type: str
    country: str | None
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PlaceBook:
    places: Mapping[str, Place]
    gazetteer: Gazetteer

    def find(self, text: str) -> list[tuple[Place, Mention]]:
        """Places named in ``text`` (NFKC-normalised), with their mentions, in text order."""
        return [(self.places[m.key], m) for m in self.gazetteer.find(text)]

    def folded_aliases(self) -> frozenset[str]:
        """Every alias, case-folded: names that are places, not actors."""
        return frozenset(a.casefold() for p in self.places.values() for a in p.aliases)


def _fail(source: str, where: str, reason: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {reason}")


def parse_places(data: Any, source: str = "places.yaml") -> PlaceBook:
    """Validate the parsed YAML of a places file; see the module docstring for what is refused."""
    if not isinstance(data, Mapping) or set(data) - {"places"}:
        raise _fail(source, "top level", "must be a mapping with the single key 'places'")
    raw = data.get("places")
    if not isinstance(raw, list) or not raw:
        raise _fail(source, "places", "must be a non-empty list")
    places: dict[str, Place] = {}
    owner: dict[str, str] = {}  # folded alias -> place id
    for i, item in enumerate(raw):
        where = f"places[{i}]"
        if not isinstance(item, Mapping):
            raise _fail(source, where, "must be a mapping")
        unknown = sorted(set(item) - _KEYS)
        if unknown:
            raise _fail(source, f"{where}.{unknown[0]}", f"unknown key (allowed: {sorted(_KEYS)})")
        pid = item.get("id")
        if not isinstance(pid, str) or not _ID_RE.match(pid):
            raise _fail(source, f"{where}.id", f"must be a lowercase slug, got {pid!r}")
        if pid in places:
            raise _fail(source, f"{where}.id", f"duplicate id {pid!r}")
        where = f"places[{i}] ({pid})"
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _fail(source, f"{where}.name", "must be a non-empty string")
        kind = item.get("type")
        if kind not in PLACE_TYPES:
            raise _fail(source, f"{where}.type", f"{kind!r} is not one of {sorted(PLACE_TYPES)}")
        country = item.get("country")
        if country is not None and not isinstance(country, str):
            raise _fail(source, f"{where}.country", "must be a string")
        aliases = item.get("aliases")
        if not isinstance(aliases, list) or not aliases:
            raise _fail(source, f"{where}.aliases", "must be a non-empty list")
        clean: list[str] = []
        for alias in aliases:
            if not isinstance(alias, str) or not alias.strip():
                raise _fail(source, f"{where}.aliases", f"{alias!r} is not a non-empty string")
            folded = " ".join(alias.split()).casefold()
            other = owner.get(folded)
            if other is not None and other != pid:
                raise _fail(source, f"{where}.aliases", f"{alias!r} is already an alias of {other}")
            if other is None:
                owner[folded] = pid
                clean.append(" ".join(alias.split()))
        places[pid] = Place(pid, name.strip(), kind, country, tuple(clean))
    gazetteer = Gazetteer((p.id, a) for p in places.values() for a in (p.name, *p.aliases))
    return PlaceBook(places, gazetteer)


@lru_cache(maxsize=8)
def load_places(path: str | Path, *, missing_ok: bool = False) -> PlaceBook:
    """Read and validate the places file once (per path)."""
    path = Path(path)
    if missing_ok and not path.exists():
        log.warning("%s does not exist: alerts will name no places", path)
        return PlaceBook({}, Gazetteer(()))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the places file: {err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path.name}: not valid YAML: {err}") from err
    return parse_places(data, path.name)
