"""Alerts: flagged articles grouped into stories, severity, the alert record and its outbox rows,
and digest composition. Nothing here sends; :mod:`pipeline.deliver` does."""
