"""The project's exception hierarchy.

Every error the pipeline raises on purpose derives from :class:`SanctionsWatchError`, so callers (the
CLI, the DAG tasks) can tell an expected, explained failure from a bug. Each subclass names the stage
it comes from; the message always names the thing that failed (a file and key, a feed id, a model
version, a recipient) and the reason.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "DesignationListError",
    "FeedError",
    "FeedParseError",
    "FetchError",
    "GateError",
    "InputError",
    "ModelError",
    "SanctionsWatchError",
    "StoreError",
]


class SanctionsWatchError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigError(SanctionsWatchError, ValueError):
    """A configuration file or value is missing or invalid (the message names file, key and reason)."""


class FeedError(SanctionsWatchError):
    """A feed could not be fetched or understood; recorded per feed, never stops the other feeds."""


class FetchError(FeedError):
    """The HTTP fetch of a feed failed (network, status, policy, size, deadline)."""


class FeedParseError(FeedError):
    """The fetched bytes are not a feed we can read (or are refused as hostile)."""


class InputError(SanctionsWatchError, ValueError):
    """User-supplied input (a JSON line, a data file) is malformed."""


class ModelError(SanctionsWatchError):
    """A model artefact is missing, corrupt, untrusted or incompatible with this installation."""


class GateError(ModelError):
    """A promotion was refused by the quality gate; ``failures`` lists every criterion missed."""

    def __init__(self, message: str, failures: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.failures = failures


class StoreError(SanctionsWatchError):
    """The database refused a feed's rows, or its schema is not the revision this code needs (the
    message names the database without its password, and the reason)."""


class DeliveryError(SanctionsWatchError):
    """An alert could not be delivered; ``permanent`` tells whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class DesignationListError(SanctionsWatchError, ValueError):
    """The UN consolidated list file is malformed or refused."""
