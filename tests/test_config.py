from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.config import load_config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_repo_config_loads_with_embedded_defaults() -> None:
    config = load_config(ROOT / "config", environ={})
    assert config.database_url.startswith("sqlite:///") and config.database_url.endswith(
        "var/sanctions-watch.db"
    )
    assert [f.id for f in config.feeds] == [
        "sample-world-wire",
        "sample-asia-desk",
        "sample-africa-desk",
    ]
    assert config.smtp.port == 8025 and config.smtp.password is None
    assert config.subscriptions and config.subscriptions[0].recipients


def test_production_feed_list_is_valid_and_https() -> None:
    config = load_config(ROOT / "config", environ={"SANCTIONS_WATCH_FEEDS_FILE": "feeds.yaml"})
    assert len(config.feeds) >= 10
    assert all(f.url.startswith("https://") for f in config.feeds)


def test_environment_overrides_and_secret_from_env(make_config, tmp_path: Path) -> None:
    make_config()
    config = load_config(
        tmp_path / "config",
        environ={
            "SANCTIONS_WATCH_DATABASE_URL": "postgresql://sw@db.example.org/sw",
            "SANCTIONS_WATCH_SMTP__HOST": "mail.example.org",
            "SANCTIONS_WATCH_SMTP__PORT": "587",
            "SANCTIONS_WATCH_SMTP_PASSWORD": "s3cret",
        },
    )
    assert config.database_url == "postgresql://sw@db.example.org/sw"
    assert (config.smtp.host, config.smtp.port, config.smtp.password) == (
        "mail.example.org",
        587,
        "s3cret",
    )
    assert "s3cret" not in repr(config.smtp)


@pytest.mark.parametrize(
    ("file", "mutate", "message"),
    [
        (
            "settings.yaml",
            lambda d: d.update(smtp={"port": "twenty-five"}),
            "settings.yaml: smtp.port: must be int",
        ),
        (
            "settings.yaml",
            lambda d: d.update(smtp={"security": "tls13"}),
            "smtp.security: must be one of",
        ),
        ("settings.yaml", lambda d: d.update(colour="blue"), "settings.yaml: colour: unknown key"),
        ("settings.yaml", lambda d: d.update(threshold=1.5), "threshold: must be between 0 and 1"),
        (
            "settings.yaml",
            lambda d: d.update(database_url="mysql://x/y"),
            "database_url: must be a sqlite",
        ),
        (
            "settings.yaml",
            lambda d: d.update(operators=["not-an-address"]),
            "operators: 'not-an-address'",
        ),
        (
            "feeds.yaml",
            lambda d: d["feeds"].append({"id": "f2", "url": "file:///etc/passwd"}),
            "feeds[1].url: must be an http(s) URL",
        ),
        (
            "feeds.yaml",
            lambda d: d["feeds"].append({"id": "f1", "url": "https://a.example/x"}),
            "feeds[1].id: duplicate feed id",
        ),
        (
            "feeds.yaml",
            lambda d: d["feeds"].append({"id": "Bad Id", "url": "https://a.example/x"}),
            "feeds[1].id: must be a lowercase slug",
        ),
        (
            "feeds.yaml",
            lambda d: d["feeds"].append({"url": "https://a.example/x"}),
            "feeds[1].id: is required",
        ),
        (
            "subscriptions.yaml",
            lambda d: d["subscriptions"].append({"id": "s2", "recipients": ["nobody"]}),
            "subscriptions[1].recipients: 'nobody' is not an email",
        ),
        (
            "subscriptions.yaml",
            lambda d: d["subscriptions"].append(
                {"id": "s3", "recipients": ["a@b.org"], "mode": "hourly"}
            ),
            "subscriptions[1].mode: must be one of",
        ),
        (
            "subscriptions.yaml",
            lambda d: d["subscriptions"].append(
                {"id": "s4", "recipients": ["a@b.org"], "min_severity": "urgent"}
            ),
            "min_severity: must be one of",
        ),
    ],
)
def test_invalid_config_is_refused_naming_file_key_and_reason(
    make_config, tmp_path: Path, file, mutate, message
) -> None:
    make_config()
    path = tmp_path / "config" / file
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config", environ={})
    assert message in str(info.value)


def test_broken_yaml_and_missing_folder(tmp_path: Path, make_config) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nowhere", environ={})
    make_config()
    (tmp_path / "config" / "feeds.yaml").write_text("feeds: [unclosed\n")
    with pytest.raises(ConfigError, match=r"feeds\.yaml: not valid YAML"):
        load_config(tmp_path / "config", environ={})


def test_config_dir_from_environment(
    monkeypatch: pytest.MonkeyPatch, make_config, tmp_path: Path
) -> None:
    make_config()
    monkeypatch.setenv("SANCTIONS_WATCH_CONFIG", str(tmp_path / "config"))
    assert load_config().config_dir == (tmp_path / "config").resolve()


def test_embed_workers_is_a_setting_in_the_file_and_the_environment(
    make_config, tmp_path: Path
) -> None:
    assert make_config().embed_workers == 1
    config = make_config(settings={"embed_workers": 3})
    assert config.embed_workers == 3
    env = {"SANCTIONS_WATCH_EMBED_WORKERS": "2"}
    assert load_config(tmp_path / "config", environ=env).embed_workers == 2
    with pytest.raises(
        ConfigError, match=r"settings\.yaml: embed_workers: must be between 1 and 8"
    ):
        make_config(settings={"embed_workers": 0})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fetch": {"workers": 0}}, "settings.yaml: fetch.workers: must be between 1 and 64"),
        ({"fetch": {"retries": 3}}, "settings.yaml: fetch.retries: unknown key (allowed:"),
        ({"smtp": {"password": "x"}}, "settings.yaml: smtp.password: unknown key"),
        ({"alerts": {"batch": 3}}, "settings.yaml: alerts.batch: unknown key"),
        (
            {"fetch": {"user_agent": "evil\r\nX-Injected: 1"}},
            "settings.yaml: fetch: FetchPolicy.user_agent: expected printable ASCII",
        ),
        (
            {"fetch": {"allow_hosts": ["10.0.0.0/33"]}},
            "settings.yaml: fetch: ",
        ),
    ],
)
def test_fetch_smtp_and_alert_sections_refuse_what_they_do_not_read(
    make_config, settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(settings=settings)
    assert message in str(info.value)


def test_fetch_settings_are_the_fetch_policy_with_its_defaults(make_config) -> None:
    from pipeline.config import USER_AGENT, FetchPolicy
    from pipeline.deliver.webhook import WebhookPolicy
    from pipeline.jobs import webhook_sender

    config = make_config(settings={"fetch": {"allow_hosts": ["127.0.0.1"], "max_redirects": 2}})
    assert isinstance(config.fetch, FetchPolicy)
    assert config.fetch == FetchPolicy(
        allow_hosts=frozenset({"127.0.0.1"}), max_redirects=2, total_deadline=10, read_timeout=5
    )  # every other field at FetchPolicy's default (write_config sets the two timeouts)
    assert config.fetch.user_agent == USER_AGENT == WebhookPolicy().user_agent
    sender = webhook_sender(config)
    assert sender.policy.user_agent == USER_AGENT
    assert sender.policy.allow_hosts == config.fetch.allow_hosts


def test_a_feed_may_not_ask_for_more_entries_than_one_statement_can_bind(make_config) -> None:
    with pytest.raises(ConfigError, match="max_items"):
        make_config(feeds=[{"id": "big", "url": "http://127.0.0.1:9/f.xml", "max_items": 50_000}])
