"""A per-call deadline watchdog: at the deadline it shuts down every socket the call opened.

Shutting a socket down wakes a thread blocked on it, so a server that accepted and never answers, or
trickles its reply a byte at a time, cannot hold a fetch, a webhook POST or an SMTP exchange past its
total deadline. Nothing is shared between calls: one call's deadline never touches another's socket.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

__all__ = ["Watchdog", "shutdown_stream"]


def shutdown_stream(stream: object) -> None:
    """Shut the socket under an httpcore network stream down, which wakes a thread blocked on it."""
    get_extra_info = getattr(stream, "get_extra_info", None)
    if not callable(get_extra_info):
        return
    try:
        sock = get_extra_info("socket")
    except Exception:  # noqa: BLE001 - a closed stream may refuse; nothing left to interrupt
        return
    if isinstance(sock, socket.socket):
        # socket.socket.shutdown, not SSLSocket.shutdown: act on the file descriptor only, without
        # touching the TLS object another thread may be using.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """Per-call timer: at the deadline it shuts down every socket this fetch opened."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # time.monotonic() value
        self._lock = threading.Lock()
        self._streams: list[object] = []
        self._fired = threading.Event()
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        timer = threading.Timer(max(0.0, self.remaining()), self._fire)
        timer.daemon = True
        timer.name = "fetch-watchdog"
        self._timer = timer
        timer.start()

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    @property
    def expired(self) -> bool:
        return self.fired or self.remaining() <= 0

    def track(self, stream: object) -> None:
        with self._lock:
            if not any(s is stream for s in self._streams):
                self._streams.append(stream)
            fired = self._fired.is_set()
        if fired:
            shutdown_stream(stream)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore ``trace`` extension: learn the sockets an injected client opens for us."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            if stream is not None:
                self.track(stream)

    def _fire(self) -> None:
        with self._lock:
            self._fired.set()
            streams = list(self._streams)
        for stream in streams:
            shutdown_stream(stream)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._streams.clear()
