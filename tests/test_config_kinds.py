"""Subscriptions may filter on breach kinds; an unknown kind is refused naming file, key and reason."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.knowledge.breaches import BREACH_KINDS


def test_kinds_filter_is_read(make_config) -> None:
    config = make_config(
        subscriptions=[
            {
                "id": "arms",
                "recipients": ["a@example.org"],
                "kinds": ["Arms-Transfer", "ship-to-ship"],
            },
            {"id": "all", "recipients": ["b@example.org"]},
        ]
    )
    arms, everything = config.subscriptions
    assert arms.kinds == ("arms-transfer", "ship-to-ship") and everything.kinds == ()


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        (["arms"], r"subscriptions\.yaml: subscriptions\[0\]\.kinds: unknown breach kind 'arms'"),
        ("arms-transfer", r"subscriptions\[0\]\.kinds: must be list"),
        ([""], r"subscriptions\[0\]\.kinds: must be a list of non-empty strings"),
    ],
)
def test_unknown_or_malformed_kinds_are_refused(make_config, kinds, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_config(subscriptions=[{"id": "x", "recipients": ["a@example.org"], "kinds": kinds}])


def test_the_error_lists_the_known_kinds(make_config) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(subscriptions=[{"id": "x", "recipients": ["a@example.org"], "kinds": ["coal"]}])
    assert all(k in str(err.value) for k in BREACH_KINDS)
