"""Settings added for issue 11 (health, retention, freshness) and the executor check: defaults,
overrides, refusals that name file, key and reason."""

from __future__ import annotations

import pytest

from pipeline.config import check_executor
from pipeline.errors import ConfigError


def test_health_retention_and_freshness_defaults_and_overrides(make_config) -> None:
    d = make_config()
    assert (d.health.failures_to_notify, d.health.reminder_hours, d.health.feed_batch_size) == (
        3,
        24.0,
        25,
    )
    assert (d.retention.fetch_log_days, d.retention.articles_days) == (90.0, 365.0)
    assert (d.alerts.late_after_days, d.alerts.late_items) == (7.0, "mark")
    c = make_config(
        settings={
            "health": {"failures_to_notify": 1, "feed_batch_size": 5},
            "retention": {"articles_days": 0},
            "alerts": {"late_items": "drop"},
        }
    )
    assert c.health.failures_to_notify == 1 and c.health.feed_batch_size == 5
    assert c.retention.articles_days == 0 and c.alerts.late_items == "drop"


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"health": {"failures_to_notify": 0}}, "failures_to_notify"),
        ({"health": {"batch": 3}}, "batch"),
        ({"retention": {"articles_days": -1}}, "articles_days"),
        ({"alerts": {"late_items": "hide"}}, "late_items"),
    ],
)
def test_bad_values_are_refused_naming_the_key(make_config, settings, words) -> None:
    with pytest.raises(ConfigError, match=words):
        make_config(settings=settings)


def test_sqlite_is_refused_under_a_distributed_executor(make_config, tmp_path) -> None:
    sqlite = make_config()
    for executor in (None, "", "LocalExecutor", "SequentialExecutor"):
        check_executor(sqlite, executor)  # one machine: SQLite is fine
    for executor in ("CeleryExecutor", "KubernetesExecutor", "LocalExecutor, CeleryExecutor"):
        with pytest.raises(ConfigError, match="database_url: SQLite cannot serve") as err:
            check_executor(sqlite, executor)
        assert "settings.yaml" in str(err.value) and "postgresql://" in str(err.value)
    postgres = make_config(database_url="postgresql://u@127.0.0.1:5432/db")
    check_executor(postgres, "CeleryExecutor")
