"""Subscriptions and alert settings: invalid ones are refused at load with the file, key and reason."""

from __future__ import annotations

import pytest
from helpers import ROOT

from pipeline.config import load_config
from pipeline.errors import ConfigError


@pytest.mark.parametrize(
    ("subscription", "message"),
    [
        (
            {"regimes": ["narnia"]},
            "subscriptions[0].regimes: unknown regime 'narnia' (known: car, dprk",
        ),
        ({"sources": ["nowhere"]}, "subscriptions[0].sources: unknown feed id 'nowhere'"),
        (
            {"languages": ["english"]},
            "subscriptions[0].languages: 'english' is not an ISO 639 language code",
        ),
        (
            {"recipients": ["a@example.org", "A@example.org"]},
            "subscriptions[0].recipients: lists the same recipient twice",
        ),
        ({"digest_hour_utc": 24}, "subscriptions[0].digest_hour_utc: must be between 0 and 23"),
        ({"min_score": 1.5}, "subscriptions[0].min_score: must be between 0.0 and 1.0"),
        ({"keywords": [""]}, "subscriptions[0].keywords: must be a list of non-empty strings"),
        ({"format": "slack"}, "subscriptions[0].format: applies to webhook subscriptions only"),
        ({"recipients": []}, "subscriptions[0].recipients: must list at least one recipient"),
        ({"when": "daily"}, "subscriptions[0].when: unknown key"),
        (
            {"channel": "webhook", "recipients": ["http://hooks.example.org/x"]},
            "webhook http://hooks.example.org/… must use https (http only for hosts in fetch.allow_hosts)",
        ),
        (
            {"channel": "webhook", "recipients": ["https://10.0.0.5/hook"]},
            "webhook host 10.0.0.5 is a private address",
        ),
        (
            {"channel": "webhook", "recipients": ["https://user:pw@hooks.example.org/x"]},
            "webhook https://hooks.example.org/… must not embed credentials",
        ),
        (
            {"channel": "webhook", "recipients": ["javascript:alert(1)"]},
            "must be an http(s) URL with a host",
        ),
        (
            {
                "channel": "webhook",
                "recipients": ["https://hooks.slack.com/x"],
                "format": "discord",
            },
            "subscriptions[0].format: must be one of auto, slack, teams, json",
        ),
    ],
)
def test_invalid_subscription_is_refused_with_a_clear_message(
    make_config, subscription, message
) -> None:
    sub = {"id": "s", "recipients": ["a@example.org"], **subscription}
    with pytest.raises(ConfigError) as err:
        make_config(subscriptions=[sub])
    assert "subscriptions.yaml: " in str(err.value)
    assert message in str(err.value)


def test_valid_webhook_and_digest_subscriptions_load(make_config) -> None:
    config = make_config(
        subscriptions=[
            {
                "id": "slack",
                "channel": "webhook",
                "recipients": ["https://hooks.slack.com/services/T/B/X"],
            },
            {
                "id": "teams",
                "channel": "webhook",
                "format": "teams",
                "mode": "digest",
                "recipients": ["https://x.webhook.office.com/y"],
            },
            {
                "id": "local",
                "channel": "webhook",
                "recipients": ["http://127.0.0.1:9000/hook"],
            },  # allow-listed
            {
                "id": "daily",
                "mode": "digest",
                "digest_hour_utc": 6,
                "regimes": ["dprk", "iran"],
                "languages": ["EN", "fr"],
                "sources": ["f1"],
                "recipients": ["d@example.org"],
            },
        ]
    )
    by_id = {s.id: s for s in config.subscriptions}
    assert by_id["teams"].format == "teams" and by_id["teams"].mode == "digest"
    assert by_id["daily"].languages == ("en", "fr") and by_id["daily"].digest_hour_utc == 6


def test_webhook_url_from_the_environment(make_config, tmp_path) -> None:
    sub = {"id": "chat", "channel": "webhook", "recipients": ["${SANCTIONS_WATCH_WEBHOOK_CHAT}"]}
    with pytest.raises(
        ConfigError, match="environment variable SANCTIONS_WATCH_WEBHOOK_CHAT is not set"
    ):
        make_config(subscriptions=[sub])
    config = load_config(
        tmp_path / "config",
        environ={"SANCTIONS_WATCH_WEBHOOK_CHAT": "https://hooks.slack.com/services/T/B/S3CR3T"},
    )
    assert config.subscriptions[0].recipients == ("https://hooks.slack.com/services/T/B/S3CR3T",)


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"story_threshold": 0}, "alerts.story_threshold: must be between 0.05 and 1.0"),
        ({"story_window_hours": 0.5}, "alerts.story_window_hours: must be between 1.0"),
        ({"webhook_timeout": 600}, "alerts.webhook_timeout: must be between 1.0 and 120.0"),
    ],
)
def test_invalid_alert_settings_are_refused(make_config, alerts, message) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(settings={"alerts": alerts})
    assert message in str(err.value)


def test_repo_subscriptions_are_valid_with_both_feed_files() -> None:
    for feeds_file in ("feeds.sample.yaml", "feeds.yaml"):
        config = load_config(ROOT / "config", environ={"SANCTIONS_WATCH_FEEDS_FILE": feeds_file})
        assert config.subscriptions
        assert {s.mode for s in config.subscriptions} == {"immediate", "digest"}
