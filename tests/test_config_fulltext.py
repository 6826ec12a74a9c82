"""Configuration of full text (issue 9, item 5): ``full_text`` per feed in the feeds file, and the
``full_text:`` section of settings.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import ROOT

from pipeline.config import FullTextSettings, load_config
from pipeline.errors import ConfigError


def test_feeds_default_to_auto_and_the_defaults_block_applies(make_config, tmp_path: Path) -> None:
    config = make_config(
        feeds=[
            {"id": "a", "url": "https://a.example/rss"},
            {"id": "b", "url": "https://b.example/rss", "full_text": "never"},
            {"id": "c", "url": "https://c.example/rss", "full_text": "always"},
        ]
    )
    assert [f.full_text for f in config.feeds] == ["auto", "never", "always"]
    assert config.full_text == FullTextSettings()
    feeds_file = config.config_dir / "feeds.yaml"
    feeds_file.write_text(
        yaml.safe_dump(
            {
                "defaults": {"full_text": "never"},
                "feeds": [
                    {"id": "a", "url": "https://a.example/rss"},
                    {"id": "b", "url": "https://b.example/rss", "full_text": "auto"},
                ],
            }
        )
    )
    reloaded = load_config(config.config_dir, environ={})
    assert [f.full_text for f in reloaded.feeds] == ["never", "auto"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "sometimes",
            r"feeds\.yaml: feeds\[1\]\.full_text: feed 'second': must be one of never, "
            r"auto, always, got 'sometimes'$",
        ),
        (False, r"feeds\[1\]\.full_text: feed 'second': .*got False \(YAML reads yes/no/on/off"),
        (["auto"], r"feeds\[1\]\.full_text: feed 'second': must be one of"),
    ],
)
def test_a_bad_full_text_names_file_feed_and_key(make_config, value: object, message: str) -> None:
    feeds = [
        {"id": "first", "url": "https://a.example/rss"},
        {"id": "second", "url": "https://b.example/rss", "full_text": value},
    ]
    with pytest.raises(ConfigError, match=message):
        make_config(feeds=feeds)


def test_the_full_text_settings_section_is_read_validated_and_overridable(make_config) -> None:
    config = make_config(
        settings={
            "full_text": {"band_low": 0.25, "min_delay": 5, "max_pages": 0, "regime_heads": False}
        }
    )
    assert config.full_text == FullTextSettings(
        band_low=0.25, min_delay=5.0, max_pages=0, regime_heads=False
    )
    env = {"SANCTIONS_WATCH_FULL_TEXT__WORKERS": "2"}
    assert load_config(config.config_dir, environ=env).full_text.workers == 2
    for section, message in (
        ({"band_low": 1.5}, r"settings\.yaml: full_text\.band_low: must be between 0\.0 and 1\.0"),
        ({"min_delay": -1}, r"settings\.yaml: full_text\.min_delay: must be between"),
        ({"regime_heads": "yes"}, r"settings\.yaml: full_text\.regime_heads: must be bool"),
        ({"max_bytes": 10}, r"settings\.yaml: full_text\.max_bytes: must be between 1024"),
        ({"delay": 1}, r"settings\.yaml: full_text\.delay: unknown key \(allowed: band_low"),
    ):
        with pytest.raises(ConfigError, match=message):
            make_config(settings={"full_text": section})


def test_the_shipped_feed_files_and_settings_name_full_text() -> None:
    config = load_config(ROOT / "config", environ={})
    assert {f.full_text for f in config.feeds} <= {"never", "auto", "always"}
    settings = yaml.safe_load((ROOT / "config" / "settings.yaml").read_text())
    assert set(settings["full_text"]) == {
        "band_low",
        "regime_heads",
        "full_body_words",
        "max_pages",
        "max_seconds",
        "min_delay",
        "workers",
        "max_bytes",
    }
    for name in ("feeds.yaml", "feeds.sample.yaml"):
        assert "full_text" in (ROOT / "config" / name).read_text(), name
