"""Named crash points for fault-injection tests (a no-op in normal operation).

``checkpoint("deliver.after_send")`` kills the process on the spot (``os._exit``, no cleanup, no
commit) when ``SANCTIONS_WATCH_CRASH_AT`` names that point. The hardening tests run the pipeline in a
subprocess with the variable set, then re-run it and check that nothing was lost or sent twice.
"""

from __future__ import annotations

import os

__all__ = ["POINTS", "checkpoint"]

ENV = "SANCTIONS_WATCH_CRASH_AT"
POINTS = frozenset(
    {
        "ingest.mid_batch",  # inside a feed's transaction, after some rows were written
        "deliver.before_send",  # row claimed, SMTP not yet spoken
        "deliver.after_send",  # SMTP accepted the message, outcome not yet committed
        "deliver.after_commit",  # outcome committed
    }
)


def checkpoint(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    if os.environ.get(ENV) == name:
        os._exit(70)
