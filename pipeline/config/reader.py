"""Reading YAML into typed values: every error names the file, the key and the reason; environment
overrides under ``SANCTIONS_WATCH_``; a section refuses the keys nobody reads."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pipeline.config.records import ENV_PREFIX
from pipeline.errors import ConfigError
from pipeline.net.policy import redact_url

log = logging.getLogger(__name__)


class Reader:
    """Reads typed values out of one YAML mapping, naming file and key in every error.

    It remembers every key it was asked for, so :meth:`check_read` can refuse the keys nobody
    reads: a section's allowed keys are exactly the ones the loader reads, never a second list.
    """

    def __init__(self, path: Path, data: Mapping[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix
        self.asked: set[str] = set()

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.path.name}: {self.prefix}{key}: {reason}")

    def sub(self, key: str) -> Reader:
        self.asked.add(key)
        value = self.data.get(key) or {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        return Reader(self.path, value, f"{self.prefix}{key}.")

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise self.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def check_read(self) -> None:
        """Refuse any key of this mapping that no ``get``/``sub`` asked for."""
        self.check_keys(self.asked)

    def get(self, key: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        self.asked.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            raise self.fail(key, f"must be {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        value: float = self.get(key, float, default)
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, got {value}")
        return value

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value: int = self.get(key, int, default)
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, got {value}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, "must be a list of non-empty strings")
        return tuple(v.strip() for v in value)

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value: str = self.get(key, str, default)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}, got {value!r}")
        return value


def read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: file not found") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read: {err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path.name}: not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path.name}: the top level must be a mapping")
    return data


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``SANCTIONS_WATCH_KEY`` / ``SANCTIONS_WATCH_SECTION__KEY`` onto the settings mapping."""
    # Not settings: the config folder, the secret, test switches and the crash point (faults.py).
    skip = {"CONFIG", "SMTP_PASSWORD", "REVIEW_SECRET", "REQUIRE_POSTGRES", "TEST_POSTGRES_URL",
            "CRASH_AT"}  # fmt: skip
    merged: dict[str, Any] = {
        k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()
    }
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :] in skip:
            continue
        if name[len(ENV_PREFIX) :].startswith("WEBHOOK_"):
            continue  # webhook URLs referenced from subscriptions.yaml, not settings
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        value: Any = yaml.safe_load(raw) if raw.strip() else None
        if len(parts) == 1:
            merged[parts[0]] = value
        elif len(parts) == 2:
            section = merged.setdefault(parts[0], {})
            if isinstance(section, dict):
                section[parts[1]] = value
    return merged


def check_url(reader: Reader, key: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise reader.fail(key, f"must be an http(s) URL with a host, got {redact_url(url)!r}")
    return url
