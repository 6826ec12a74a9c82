"""The analyst loop (issue 12): labels on scored articles, signed one-click email links, and the
review page. ``labels`` writes and reads the append-only ``label_events`` table; ``tokens`` signs and
checks the links an alert email carries. Nothing here imports Airflow."""

from __future__ import annotations
