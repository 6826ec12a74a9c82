"""Structured, masked log records: which feed, article and model a line is about; no secrets in URLs.

Guarantees, once :func:`install` ran in a process (``Runtime.open`` and the command line call it;
idempotent):

* every log record carries ``feed_id``, ``article_id`` and ``model_version`` attributes (None where
  not known), taken from context variables the stages set with :func:`bind` (ingest binds the feed
  per harvest, the article-page fetcher the feed and article, classify the model version). Context
  variables follow each thread and asyncio task, so the feeds fetched concurrently never swap ids;
* a URL in a record's message or traceback that carries userinfo (``https://user:pw@host``,
  ``postgresql://u:secret@db``) or credential-like query values (``token``, ``key``, ``sig``,
  ``password``, ``api_key``, opaque 20+ character values ...) is rewritten by
  :func:`pipeline.net.policy.redact_url` before any handler sees it: Airflow's task log, the
  command line's stderr, a JSON collector. A secret placed in a URL's *path* is not recognised
  as such (as in ``redact_url``), so the secrets the config holds (:func:`secrets_of`, given to
  :func:`install`; a Slack webhook's key is in its path) are also replaced by ``***`` wherever they
  appear, when at least ``MIN_SECRET`` characters long. A message with nothing to hide is left
  untouched (same ``msg`` and ``args``).

:func:`use_format` sets the command line's handlers to one line of text (with
``[feed=... article=... model=...]`` when known) or one JSON object a line (``logging.format``);
inside Airflow the task log's format is Airflow's and only the record attributes and masking apply.
:func:`secrets_of` lists the secret strings in a config, for a host's own masker (Airflow's
``mask_secret`` at the DAG edge). Nothing here imports Airflow.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from pipeline.config import Config
from pipeline.net.policy import redact_url

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "TextFormatter",
    "bind",
    "call_bound",
    "cli_handler",
    "install",
    "mask_secrets",
    "secrets_of",
    "serve_model",
    "use_format",
]

T = TypeVar("T")

FEED_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("feed_id", default=None)
ARTICLE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("article_id", default=None)
MODEL_VERSION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "model_version", default=None
)
_VARS = {"feed_id": FEED_ID, "article_id": ARTICLE_ID, "model_version": MODEL_VERSION}
CONTEXT_FIELDS = tuple(_VARS)
_SHORT = {"feed_id": "feed", "article_id": "article", "model_version": "model"}

# A URL as it appears in running text: scheme://, then anything up to white space or a quote or
# bracket that ends it in prose and reprs. Only URLs with "@" or "?" can hold what redact_url hides.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,30}://[^\s'\"<>()\[\]{}]+")

_lock = threading.Lock()
_installed = False
_known: tuple[str, ...] = ()  # the config's secrets (install(secrets=...)), longest first
MASK = "***"
MIN_SECRET = 8  # shorter strings are not masked by value: they would blank common words


# ----------------------------------------------------------------------------------------- masking


def _mask_url(match: re.Match[str]) -> str:
    url = match.group(0)
    if "@" not in url and "?" not in url:
        return url
    tail = ""
    while url and url[-1] in ".,;:!":  # punctuation that ends a sentence, not the URL
        url, tail = url[:-1], url[-1] + tail
    return redact_url(url) + tail


def mask_secrets(text: str) -> str:
    """``text`` with every URL that holds userinfo or a credential-like query value redacted, and
    every secret given to :func:`install` replaced by ``***``; the rest unchanged. Never raises."""
    if "://" in text:
        text = _URL.sub(_mask_url, text)
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


# ------------------------------------------------------------------------------------------ context


@contextmanager
def bind(**values: str | int | None) -> Iterator[None]:
    """Set ``feed_id`` / ``article_id`` / ``model_version`` for the records logged inside the block
    (this thread or task only); the previous values come back after it, however it ends."""
    tokens = []
    for name, value in values.items():
        var = _VARS.get(name)
        if var is None:
            raise TypeError(f"unknown log context field {name!r} (known: {', '.join(_VARS)})")
        tokens.append((var, var.set(None if value is None else str(value))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def call_bound(
    context: Mapping[str, str | int | None], fn: Callable[..., T], /, *a: Any, **kw: Any
) -> T:
    """``fn(*a, **kw)`` inside ``bind(**context)``: for work handed to a thread pool, whose
    threads do not inherit the submitter's context."""
    with bind(**context):
        return fn(*a, **kw)


def serve_model(version: str) -> None:
    """Mark the model this process (thread or task) serves from now on: later records carry its
    ``model_version`` (classify calls it once the model is loaded; a task serves one model)."""
    MODEL_VERSION.set(version)


def _add_context(record: logging.LogRecord) -> None:
    for name, var in _VARS.items():
        if not hasattr(record, name):  # an explicit extra={...} wins
            setattr(record, name, var.get())


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string is logging's own error to report
        return
    masked = mask_secrets(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = mask_secrets(text)


def install(secrets: Iterable[str] = ()) -> None:
    """Make every later log record in this process carry the context fields and have secrets in
    URLs masked (a record factory wrapping the current one; installed once). ``secrets`` (from
    :func:`secrets_of`: the config of this process) are masked wherever they appear; they replace
    those of an earlier call."""
    global _installed, _known
    with _lock:
        _known = tuple(sorted({s for s in secrets if len(s) >= MIN_SECRET}, key=len, reverse=True))
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _add_context(record)
            _mask_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


# --------------------------------------------------------------------------------------- formatters


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    out = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            out[name] = str(value)
    return out


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [feed=... article=... model=...]`` (the brackets only when
    known), secrets in URLs masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = mask_secrets(super().format(record))
        ctx = _context_of(record)
        if ctx:
            tags = " ".join(f"{_SHORT[k]}={v}" for k, v in ctx.items())
            first, nl, rest = line.partition("\n")
            line = f"{first} [{tags}]{nl}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
    context fields that are known, and ``exception`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            **_context_of(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = mask_secrets(record.exc_text)
        return json.dumps(out, ensure_ascii=False, default=str)


class _CliHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The command line's own handler: the one :func:`use_format` may change."""


def cli_handler(stream: Any) -> logging.Handler:
    """The command line's stderr handler, text until :func:`use_format` says otherwise."""
    handler = _CliHandler(stream)
    handler.setFormatter(TextFormatter())
    return handler


def use_format(fmt: str) -> None:
    """Give the root logger's :func:`cli_handler` handlers the ``text`` or ``json`` formatter
    (``logging.format``); other handlers (Airflow's, a test runner's) are never touched."""
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _CliHandler):
            handler.setFormatter(formatter)


# ------------------------------------------------------------------------------------------ secrets


_SECRET_KEY = re.compile(r"(pass|pw|token|key|secret|sig|auth|cred|session)", re.IGNORECASE)
_OPAQUE = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_\-.~+/=]{20,}")


def _url_secrets(url: str) -> list[str]:
    """The password and credential-like query values of one URL."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return found
    if password:
        found.append(unquote(password))
    for key, value in parse_qsl(parts.query):
        if value and (_SECRET_KEY.search(key) or _OPAQUE.fullmatch(value)):
            found.append(value)
    return found


def secrets_of(config: Config) -> list[str]:
    """Every secret string the config holds (SMTP password, review secret, database password,
    credentials in feed and webhook URLs), for a host's log masker; at least ``MIN_SECRET``
    characters each, so masking never blanks common words (URLs are masked whatever their length)."""
    found = [config.smtp.password or "", config.review.secret or ""]
    found += _url_secrets(config.database_url)
    for feed in config.feeds:
        found += _url_secrets(feed.url)
    for sub in config.subscriptions:
        if sub.channel == "webhook":
            for url in sub.recipients:
                found += _url_secrets(url)
                path = urlsplit(url).path
                found += [p for p in path.split("/") if _OPAQUE.fullmatch(p)]  # Slack's key
    return sorted({s for s in found if len(s) >= MIN_SECRET})
