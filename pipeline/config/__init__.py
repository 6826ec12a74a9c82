"""Configuration: YAML files in a config folder, read once into frozen, validated objects.

The folder is ``--config DIR``, else ``$SANCTIONS_WATCH_CONFIG``, else ``config/`` of the checkout. It
holds ``settings.yaml``, ``feeds.yaml`` (or another feeds file named by ``feeds_file``),
``subscriptions.yaml`` and ``regimes.yaml``. Environment variables override settings under one prefix:
``SANCTIONS_WATCH_DATABASE_URL``, ``SANCTIONS_WATCH_SMTP__HOST`` (a double underscore enters a section).
Secrets never live in a committed file: the SMTP password comes from ``SANCTIONS_WATCH_SMTP_PASSWORD``
(or, inside Airflow, from the ``smtp_default`` connection).

Every problem is raised as :class:`ConfigError` naming the file, the key and the reason.
"""

from __future__ import annotations

from pipeline.config.loader import check_executor, load_config
from pipeline.config.records import (
    USER_AGENT,
    AlertSettings,
    ClassifySettings,
    Config,
    FeedConfig,
    FetchPolicy,
    FullTextSettings,
    HealthSettings,
    ModelLocations,
    RetentionSettings,
    ReviewSettings,
    SmtpSettings,
    Subscription,
    default_config_dir,
)

__all__ = [
    "USER_AGENT",
    "AlertSettings",
    "ClassifySettings",
    "Config",
    "FeedConfig",
    "FetchPolicy",
    "FullTextSettings",
    "HealthSettings",
    "ModelLocations",
    "RetentionSettings",
    "ReviewSettings",
    "SmtpSettings",
    "Subscription",
    "check_executor",
    "default_config_dir",
    "load_config",
]
