"""The operator view in the Airflow UI: feed health, alert volumes by regime and day, the outbox,
latency and the model in service (the data: :mod:`pipeline.health.overview`).

:mod:`~pipeline.health.web.page` renders it (HTML, JSON), :mod:`~pipeline.health.web.app` serves it
(FastAPI, every route authenticated); :mod:`pipeline.airflow_plugin` registers it with Airflow 3 (the
only module of ``pipeline`` that imports Airflow; nothing here imports it).
"""

from __future__ import annotations

from pipeline.health.web.app import Authenticate, Verdict, create_app
from pipeline.health.web.page import overview_json, render_overview

__all__ = ["Authenticate", "Verdict", "create_app", "overview_json", "render_overview"]
