"""The pipeline's StatsD metrics, received on a real UDP socket on loopback."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest
from helpers import NOW, ROOT, sample_feeds

from pipeline.config.records import MetricsSettings
from pipeline.errors import ConfigError
from pipeline.jobs import Runtime, run_once
from pipeline.metrics import MAX_DATAGRAM, Metric, StatsdClient, emit_report
from pipeline.reports import DeliveryReport, IngestReport
from pipeline.store.db import make_engine, make_sessionmaker

LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9_.-]+):(?P<value>-?[0-9.]+)\|(?P<kind>c|g|ms)(\|#(?P<tags>.+))?$"
)


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 standing in for statsd-exporter."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    yield sock
    sock.close()


def received(sock: socket.socket, *, wait: float = 0.5) -> list[str]:
    """Every StatsD line that arrived (datagrams split on newlines), each checked for its form."""
    lines: list[str] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            break
        lines += data.decode("utf-8").split("\n")
    for line in lines:
        assert LINE.match(line), line
    return lines


def by_name(lines: list[str]) -> dict[str, list[tuple[float, str, str | None]]]:
    out: dict[str, list[tuple[float, str, str | None]]] = {}
    for line in lines:
        m = LINE.match(line)
        assert m is not None
        out.setdefault(m["name"], []).append((float(m["value"]), m["kind"], m["tags"]))
    return out


@pytest.mark.slow
def test_a_cycle_sends_its_counts_timings_and_latencies(
    make_config, db_url: str, feed_server, mail_sink, receiver: socket.socket
) -> None:
    port = receiver.getsockname()[1]
    feeds = [*sample_feeds(feed_server.url), {"id": "dead", "url": f"{feed_server.url}/no.xml"}]
    config = make_config(
        database_url=db_url,
        feeds=feeds,
        smtp_port=mail_sink.port,
        settings={"metrics": {"enabled": True, "port": port, "tags": True}},
    )
    with Runtime.open(config) as rt:
        run = run_once(rt, now=NOW, run_id="m1")
    got = by_name(received(receiver))
    p = "sanctions_watch."

    def one(name: str) -> tuple[float, str, str | None]:
        assert len(got.get(p + name, [])) == 1, (name, sorted(got))
        return got[p + name][0]

    assert run.articles_new > 0 and run.flagged > 0 and run.alerts_sent > 0  # a real cycle
    assert one("ingest.entries_seen")[:2] == (run.entries_seen, "c")
    assert one("ingest.articles_new")[:2] == (run.articles_new, "c")
    assert one("ingest.duplicates")[:2] == (run.duplicates, "c")
    assert one("ingest.feeds_failed")[:2] == (1, "c")
    assert one("classify.flagged") == (run.flagged, "c", f"model_version:{run.model_version}")
    assert one("classify.classified")[0] == run.classified
    assert one("alerts.alerts_new")[:2] == (run.alerts_new, "c")
    assert one("alerts.deliveries_pending")[:2] == (run.alerts_sent, "g")  # all queued, then sent
    assert one("deliver.sent")[:2] == (run.alerts_sent, "c")
    assert one("deliver.failed")[:2] == (0, "c")
    assert one("deliver.pending")[:2] == (0, "g")
    assert one("health.notices_new")[:2] == (run.notices_new, "c")
    assert p + "alerts.digests_new" not in got  # retired: digests have their own stage
    assert one("digest.digests_new")[:2] == (run.digests_new, "c")
    for stage in ("ingest", "classify", "alerts", "digest", "deliver", "health"):
        value, kind, _ = one(f"{stage}.duration")
        assert kind == "ms" and value >= 0
    # One latency per alert delivery sent: first sight is this run's NOW, so 0 ms; the sample
    # stories were published before NOW.
    seen = got[p + "deliver.latency.first_seen"]
    assert len(seen) == run.alerts_sent and {(v, k) for v, k, _ in seen} == {(0.0, "ms")}
    assert {t for _, _, t in seen} == {"channel:email"}
    published = got.get(p + "deliver.latency.published", [])
    assert 0 < len(published) <= run.alerts_sent and all(v > 0 for v, _, _ in published)
    # Every name sent is in the operators' list (docs/operations.md, "Metrics and logs").
    docs = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = docs.split("## Metrics and logs", 1)[1].split("\n## ", 1)[0]
    for name in got:
        short = name.removeprefix(p)
        assert f"`{short}`" in section or short.endswith(".duration"), short


def test_off_by_default_sends_nothing(receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    emit_report(MetricsSettings(port=port), IngestReport("r", articles_new=3))
    assert received(receiver, wait=0.2) == []
    emit_report(MetricsSettings(enabled=True, port=port, prefix="x"), IngestReport("r", feeds_ok=3))
    assert "x.ingest.feeds_ok:3|c" in received(receiver)


def test_lines_are_statsd_and_dogstatsd() -> None:
    tags = {"model_version": "v 3", "channel": "email"}
    assert Metric("a.b", 3).line("sw", tags=False) == "sw.a.b:3|c"
    assert (
        Metric("a.b", 3, "g", tags).line("sw", tags=True)
        == "sw.a.b:3|g|#model_version:v_3,channel:email"
    )
    assert Metric("t", 1.23456, "ms").line("sw", tags=True) == "sw.t:1.235|ms"
    assert Metric("t", 2.0, "ms").line("", tags=True) == "t:2|ms"
    assert Metric("bad name:x|y", 1).line("sw", tags=False) == "sw.bad_name_x_y:1|c"


def test_many_lines_are_packed_into_datagrams_under_the_mtu(receiver: socket.socket) -> None:
    client = StatsdClient("127.0.0.1", receiver.getsockname()[1])
    lines = [f"sanctions_watch.n{i}:{i}|c" for i in range(300)]
    client.send(lines)
    datagrams = []
    while True:
        try:
            datagrams.append(receiver.recv(65535))
        except TimeoutError:
            break
    assert 1 < len(datagrams) == client.sent and all(len(d) <= MAX_DATAGRAM for d in datagrams)
    assert b"\n".join(datagrams).decode().split("\n") == lines
    client.close()


def test_a_failed_send_never_raises_and_is_counted_then_reported(receiver: socket.socket) -> None:
    client = StatsdClient("127.0.0.1", receiver.getsockname()[1], prefix="sw")
    client.send(["sw.big:" + "9" * 70_000 + "|c"])  # over the UDP maximum: EMSGSIZE, swallowed
    assert client.errors == 1 and client.sent == 0
    client.send(["sw.ok:1|c"])
    assert received(receiver) == ["sw.ok:1|c", "sw.metrics.send_errors:1|c"]
    client.close()


def test_nobody_listening_costs_nothing() -> None:
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens on this port now
    client = StatsdClient("127.0.0.1", port)
    started = time.monotonic()
    for _ in range(200):
        client.send(["sw.x:1|c"])
    assert time.monotonic() - started < 1.0
    assert client.sent + client.errors == 200  # ICMP refusals may show as errors: never raised
    client.close()


def test_unreadable_latencies_cost_only_those_metrics(
    tmp_path, receiver: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    """A database without the tables: the latency query fails, is logged, the counts still go."""
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    settings = MetricsSettings(enabled=True, port=receiver.getsockname()[1])
    emit_report(settings, DeliveryReport(sent=2), sessions=make_sessionmaker(engine), now=NOW)
    engine.dispose()
    assert "sanctions_watch.deliver.sent:2|c" in received(receiver)
    assert "metrics: delivery latencies not read" in caplog.text


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"port": 0}, "settings.yaml: metrics.port: must be between 1 and 65535, got 0"),
        ({"prefix": "sanctions watch"}, "settings.yaml: metrics.prefix: 'sanctions watch' must be"),
        ({"host": "statsd exporter"}, "settings.yaml: metrics.host: 'statsd exporter' is not"),
        ({"enabled": "yes"}, "settings.yaml: metrics.enabled: must be bool"),
        ({"sample_rate": 1}, "settings.yaml: metrics.sample_rate: unknown key"),
    ],
)
def test_invalid_metrics_settings_are_refused(make_config, section, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(settings={"metrics": section})
    assert str(err.value).startswith(message)


def test_metrics_settings_from_the_file_and_the_environment(make_config, tmp_path) -> None:
    config = make_config(settings={"metrics": {"host": "statsd-exporter", "port": 9125}})
    assert config.metrics == MetricsSettings(enabled=False, host="statsd-exporter", port=9125)
    from pipeline.config import load_config

    env = {"SANCTIONS_WATCH_METRICS__ENABLED": "true"}
    assert load_config(config.config_dir, environ=env).metrics.enabled is True
