"""The committed examples (docs/examples/*.html) in a real browser: Debian's chromium, headless.

Each example is rendered at phone (390×844) and desktop (1280×900) sizes: the screenshot must be a
real picture of the page, the DOM must hold the headline, and no request may leave the machine. The
last is checked by sending all of chromium's traffic (loopback included) through a recording proxy on
127.0.0.1 and making every host name unresolvable; a canary page with a remote image proves the proxy
sees what a page asks for (the browser's own background services are switched off, see the flags). Skipped, with the reason, when chromium is not installed.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import ROOT

EXAMPLES = ROOT / "docs" / "examples"
HEADLINES = {
    "alert.html": "Tanker seen in ship-to-ship transfer with North Korean vessel off Zhoushan",
    "update.html": "UPDATE to alert on story 17",
    "digest.html": "4 stories for 2026-03-15",
}
SIZES = {"phone": (390, 844), "desktop": (1280, 900)}
CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"
    ),
]


class RecordingProxy:
    """Accepts connections on loopback, records the first line of each request, answers 502."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    head = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                    self.requests.append(head)
                    conn.sendall(
                        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                except OSError:
                    pass

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=5)


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy() as p:
        yield p


def chromium(
    tmp_path: Path, proxy: RecordingProxy, page: Path, *extra: str
) -> subprocess.CompletedProcess[bytes]:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-default-apps",
        "--disable-extensions",
        f"--user-data-dir={profile}",
        f"--proxy-server=http://127.0.0.1:{proxy.port}",
        "--proxy-bypass-list=<-loopback>",  # loopback through the proxy too: we see everything
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        # The browser's own background services (network time, component updates, Google accounts)
        # are switched off or pointed at the discard port, so what the proxy sees is the page's.
        "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,Translate,MediaRouter,"
        "AutofillServerCommunication,CertificateTransparencyComponentUpdater",
        "--gaia-url=http://127.0.0.1:9",
        "--component-updater=url-source=http://127.0.0.1:9/",
        "--virtual-time-budget=3000",
        *extra,
        page.as_uri(),
    ]
    return subprocess.run(args, capture_output=True, timeout=90, check=False)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_canary_proves_the_proxy_sees_remote_requests(
    tmp_path: Path, proxy: RecordingProxy
) -> None:
    canary = tmp_path / "canary.html"
    canary.write_text('<html><body><img src="http://canary.example/pixel.gif">x</body></html>')
    out = chromium(tmp_path, proxy, canary, "--dump-dom")
    assert out.returncode == 0, out.stderr[-2000:]
    assert any("canary.example" in r for r in proxy.requests), proxy.requests


@pytest.mark.parametrize("name", sorted(HEADLINES))
def test_example_renders_with_the_headline_and_no_request_leaves(
    tmp_path: Path, proxy: RecordingProxy, name: str
) -> None:
    page = EXAMPLES / name
    dom = chromium(tmp_path, proxy, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert HEADLINES[name] in dom.stdout.decode("utf-8")
    for label, (width, height) in SIZES.items():
        shot = tmp_path / f"{name}-{label}.png"
        out = chromium(
            tmp_path, proxy, page, f"--screenshot={shot}", f"--window-size={width},{height}"
        )
        assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
        assert png_size(shot) == (width, height)
        # A blank page compresses to a few kB; a rendered alert with text and colour does not.
        assert shot.stat().st_size > 25_000, (label, shot.stat().st_size)
    assert proxy.requests == [], f"{name} made requests: {proxy.requests}"
