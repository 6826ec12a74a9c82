"""The webhook channel: the sender, which POSTs the payloads of :mod:`pipeline.deliver.payloads`.

The payload formats (Slack, Microsoft Teams, our own JSON) and what they carry are described and built
in :mod:`pipeline.deliver.payloads`; its public names are re-exported here.

**Sending** (:class:`WebhookSender`): ``https`` only, ``http`` just for hosts in
``fetch.allow_hosts``; the host's addresses are resolved and checked with the feed fetcher's address
policy (:mod:`pipeline.net.policy`: no loopback, private, link-local ... unless allow-listed) and the
connection is pinned to the approved addresses, with the fetcher's watchdog bounding the whole
attempt to ``alerts.webhook_timeout`` seconds. Redirects are not followed. 2xx is success; 429, 408,
5xx and connection failures or timeouts are retried (honouring ``Retry-After``); any other status is a
permanent failure, and so is a 30x whose ``Location`` the HTTP client cannot even parse. The URL of a webhook is a secret (Slack and Teams put the token in the path): logs
and errors show only its scheme and host.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from pipeline.config import USER_AGENT
from pipeline.deliver.payloads import SLACK_HOSTS as SLACK_HOSTS
from pipeline.deliver.payloads import (
    TEAMS_HOST_SUFFIXES,
    choose_format,
    digest_payload,
    payload_for,
)
from pipeline.deliver.render import one_line
from pipeline.errors import DeliveryError
from pipeline.ingest.fetch import parse_retry_after
from pipeline.net import policy as netguard
from pipeline.net.transport import CLIENT_ERRORS, GuardedTransport, PinnedBackend
from pipeline.net.watchdog import Watchdog

__all__ = [
    "TEAMS_HOST_SUFFIXES",
    "WebhookError",
    "WebhookPolicy",
    "WebhookSender",
    "choose_format",
    "digest_payload",
    "payload_for",
    "recipient_label",
]

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


def recipient_label(url: str) -> str:
    """A webhook URL safe to log or show: scheme and host only (the path holds the token)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "webhook <unparseable URL>"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


class WebhookError(DeliveryError):
    """A webhook delivery failed; ``retry_after`` is the server's Retry-After in seconds, if any."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message, permanent=permanent)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    timeout: float = 10.0
    allow_hosts: frozenset[str] = frozenset()
    user_agent: str = USER_AGENT


Resolver = Callable[[str, int], tuple[str, ...]]


class WebhookSender:
    """POSTs JSON to webhook URLs under the address policy, one bounded attempt per call.

    ``client`` (tests only) is used as given: the address policy is still checked, but the
    connection is not pinned to the checked addresses.
    """

    def __init__(
        self,
        policy: WebhookPolicy,
        *,
        client: httpx.Client | None = None,
        resolver: Resolver = netguard.resolve_host,
    ) -> None:
        self.policy = policy
        self.allow = netguard.AllowList.from_entries(policy.allow_hosts)
        self._client = client
        self._resolver = resolver

    def _vet(self, url: httpx.URL, label: str, deadline: float) -> tuple[str, tuple[str, ...]]:
        scheme = url.scheme.lower()
        host = netguard.normalize_host(url.host or "")
        if scheme not in _DEFAULT_PORTS or not host:
            raise WebhookError(f"{label}: not an http(s) URL with a host", permanent=True)
        listed = self.allow.allows_host(host) or (
            netguard.is_ip_literal(host) and self.allow.allows_address(ipaddress.ip_address(host))
        )
        if scheme != "https" and not listed:
            raise WebhookError(
                f"{label}: http is allowed only for hosts in fetch.allow_hosts", permanent=True
            )
        port = url.port or _DEFAULT_PORTS[scheme]
        if netguard.is_ip_literal(host):
            addresses: tuple[str, ...] = (host,)
        else:
            addresses = self._resolve(host, port, label, deadline)
        verdict = netguard.vet_addresses(host, addresses, self.allow)
        if not verdict.allowed:
            raise WebhookError(
                f"{label}: refused by the address policy: {verdict.explain()} "
                "(allow-list it in fetch.allow_hosts)",
                permanent=True,
            )
        return url.raw_host.decode("ascii"), verdict.addresses

    def _resolve(self, host: str, port: int, label: str, deadline: float) -> tuple[str, ...]:
        box: list[tuple[str, ...] | BaseException] = []
        done = threading.Event()

        def work() -> None:
            try:
                box.append(self._resolver(host, port))
            except (OSError, UnicodeError) as exc:
                box.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name="webhook-resolve", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise WebhookError(f"{label}: resolving the host timed out")
        result = box[0] if box else OSError("resolver gave no answer")
        if isinstance(result, BaseException):
            raise WebhookError(f"{label}: cannot resolve host: {result}")
        if not result:
            raise WebhookError(f"{label}: host resolved to no address")
        return result

    def send(self, payload: dict[str, Any], url: str, *, key: str, now: datetime) -> None:
        """POST ``payload`` to ``url``; raises :class:`WebhookError` (``permanent`` or not)."""
        label = recipient_label(url)
        started = time.monotonic()
        deadline = started + self.policy.timeout
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise WebhookError(f"{label}: malformed URL", permanent=True) from exc
        raw_host, addresses = self._vet(target, label, deadline)
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": self.policy.user_agent,
            "Idempotency-Key": key,
        }
        watchdog = Watchdog(deadline)
        watchdog.start()
        try:
            remaining = max(0.1, deadline - time.monotonic())
            timeout = httpx.Timeout(remaining)
            if self._client is not None:
                client = self._client
                own = None
            else:
                own = httpx.Client(
                    transport=GuardedTransport(PinnedBackend({raw_host: addresses}, watchdog)),
                    timeout=timeout,
                    follow_redirects=False,
                    trust_env=False,
                )
                client = own
            try:
                request = client.build_request(
                    "POST",
                    target,
                    content=body,
                    headers=headers,
                    timeout=timeout,
                    extensions={"trace": watchdog.trace},
                )
                response = client.send(request, stream=True, follow_redirects=False)
                try:
                    excerpt = self._read_excerpt(response)
                finally:
                    response.close()
            finally:
                if own is not None:
                    own.close()
        except (httpx.TransportError, OSError) as exc:
            if watchdog.expired:
                raise WebhookError(f"{label}: no answer within {self.policy.timeout:g}s") from None
            raise WebhookError(f"{label}: {type(exc).__name__}: {exc}") from None
        except CLIENT_ERRORS as exc:
            # httpx prepares the next request of a 30x even though we never follow it, and raises
            # on a Location it cannot parse. The text is left out: it may quote that Location.
            raise WebhookError(
                f"{label}: the receiver's answer could not be handled ({type(exc).__name__}; "
                "a redirect? redirects are not followed)",
                permanent=True,
            ) from None
        finally:
            watchdog.cancel()
        self._check(response, excerpt, label, now)
        log.debug(
            "webhook %s: HTTP %d in %.2fs", label, response.status_code, time.monotonic() - started
        )

    @staticmethod
    def _read_excerpt(response: httpx.Response) -> str:
        data = bytearray()
        for chunk in response.iter_raw():
            data += chunk
            if len(data) >= MAX_RESPONSE_BYTES:
                break
        return one_line(bytes(data[:300]).decode("utf-8", "replace"), 200)

    @staticmethod
    def _check(response: httpx.Response, excerpt: str, label: str, now: datetime) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        what = f"{label}: HTTP {status}" + (f" {excerpt}" if excerpt else "")
        if status in (408, 429) or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
            raise WebhookError(what, retry_after=retry_after)
        if 300 <= status < 400:
            raise WebhookError(f"{what} (redirects are not followed)", permanent=True)
        raise WebhookError(what, permanent=True)

    def close(self) -> None:
        return None
