"""SMTP delivery against real servers on loopback: STARTTLS and implicit TLS with AUTH LOGIN/PLAIN
(aiosmtpd with a self-signed certificate made here), a silent server, 421 replies, credentials kept out
of logs and errors, and operator notices emailed once from check_health."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import logging
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest
from builders import BASE, BASE_TITLE, FEEDS, add_article, parse
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import NOW
from sqlalchemy import select

from pipeline.deliver.mail import SmtpSender
from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, check_health, deliver, record_alerts
from pipeline.store.schema import Delivery, Notice

PASSWORD = "s3cret-Pa55word!"
USER = "alerts-bot"


# ---------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost and its key (PEM files)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(certificate) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    return ctx


def client_context(certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


def runtime_for(
    make_config,
    tmp_path: Path,
    port: int,
    *,
    security: str = "none",
    username: str | None = None,
    password: str | None = None,
    timeout: float = 5,
    subscriptions=None,
) -> Runtime:
    config = make_config(
        database_url=f"sqlite:///{tmp_path / 'smtp.db'}",
        feeds=FEEDS,
        smtp_port=port,
        subscriptions=subscriptions,
        settings={"smtp": {"security": security, "username": username, "timeout": timeout}},
    )
    config = dataclasses.replace(config, smtp=dataclasses.replace(config.smtp, password=password))
    return Runtime.open(config)


def one_alert(rt: Runtime) -> None:
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    assert record_alerts(rt, now=NOW)["alerts_new"] == 1


def secrets_in(text: str) -> bool:
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    return PASSWORD in text or encoded in text or plain in text


# ------------------------------------------------------------------------------- TLS and AUTH


@pytest.mark.parametrize(
    ("security", "mechanism"),
    [("starttls", "LOGIN"), ("ssl", "PLAIN")],
    ids=["starttls-login", "ssl-plain"],
)
def test_tls_and_auth_deliver_without_logging_credentials(
    make_config, tmp_path: Path, certificate, caplog, security: str, mechanism: str
) -> None:
    caplog.set_level(logging.DEBUG)
    tls = (
        {"tls_context": server_context(certificate)}
        if security == "starttls"
        else {"ssl_context": server_context(certificate)}
    )
    with MailSink(
        tmp_path / "box", auth={USER: PASSWORD}, auth_mechanisms={mechanism}, **tls
    ) as sink:
        rt = runtime_for(
            make_config, tmp_path, sink.port, security=security, username=USER, password=PASSWORD
        )
        one_alert(rt)
        report = deliver(
            rt, now=NOW, sender=SmtpSender(rt.config.smtp, context=client_context(certificate))
        )
        assert report["sent"] == 2 and report["pending"] == 0
        assert sink.logins == [(mechanism, USER)]  # one connection, one AUTH, for both recipients
        assert {parse(m)["To"] for m in sink.messages} == {
            "compliance@example.org",
            "analyst@example.org",
        }
        rt.close()
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pipeline"))
    assert not secrets_in(ours) and not secrets_in(repr(rt.config))


def test_wrong_password_is_retried_and_kept_out_of_errors_and_logs(
    make_config, tmp_path: Path, certificate, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    with MailSink(
        tmp_path / "box", tls_context=server_context(certificate), auth={USER: "another"}
    ) as sink:
        rt = runtime_for(
            make_config, tmp_path, sink.port, security="starttls", username=USER, password=PASSWORD
        )
        one_alert(rt)
        report = deliver(
            rt, now=NOW, sender=SmtpSender(rt.config.smtp, context=client_context(certificate))
        )
        assert (report["sent"], report["retried"]) == (0, 2) and sink.messages == []
        with rt.sessions() as s:
            errors = s.scalars(select(Delivery.last_error)).all()
        rt.close()
    assert all("authentication refused (535)" in e for e in errors)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("pipeline"))
    assert not any(secrets_in(e) or USER in e for e in errors) and not secrets_in(ours)


def test_untrusted_certificate_is_refused_and_retried(
    make_config, tmp_path: Path, certificate
) -> None:
    with MailSink(tmp_path / "box", tls_context=server_context(certificate)) as sink:
        rt = runtime_for(make_config, tmp_path, sink.port, security="starttls")
        one_alert(rt)
        report = deliver(rt, now=NOW, sender=SmtpSender(rt.config.smtp))  # system trust store only
        assert (report["sent"], report["retried"]) == (0, 2) and sink.messages == []
        with rt.sessions() as s:
            assert all(
                "CERTIFICATE_VERIFY_FAILED" in e for e in s.scalars(select(Delivery.last_error))
            )
        rt.close()


# ------------------------------------------------------------------------ misbehaving servers


class ScriptedServer:
    """A TCP server on loopback speaking just enough SMTP to misbehave.

    ``silent``: accepts and never says a word. ``busy``: greets with 421 and hangs up.
    ``mute_after_ehlo``: greets, answers EHLO, then never answers again.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._held: list[socket.socket] = []
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
            self.connections += 1
            self._held.append(conn)
            if self.mode == "busy":
                conn.sendall(b"421 4.3.2 too busy, try later\r\n")
                conn.close()
            elif self.mode == "mute_after_ehlo":
                threading.Thread(target=self._mute, args=(conn,), daemon=True).start()

    @staticmethod
    def _mute(conn: socket.socket) -> None:
        try:
            conn.sendall(b"220 mute.example ESMTP\r\n")
            conn.recv(1024)  # EHLO
            conn.sendall(b"250 mute.example\r\n")
            while conn.recv(1024):
                pass  # MAIL FROM and whatever follows: never answered
        except OSError:
            return

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for conn in self._held:
            conn.close()
        self.sock.close()
        self._thread.join(timeout=5)


THREE = [{"id": "s", "recipients": ["a@example.org", "b@example.org", "c@example.org"]}]


@pytest.mark.parametrize("mode", ["silent", "mute_after_ehlo"])
def test_a_server_that_never_answers_is_given_up_within_the_timeout(
    make_config, tmp_path: Path, mode: str
) -> None:
    with ScriptedServer(mode) as server:
        rt = runtime_for(make_config, tmp_path, server.port, timeout=1, subscriptions=THREE)
        one_alert(rt)
        started = time.monotonic()
        report = deliver(rt, now=NOW)
        elapsed = time.monotonic() - started
        with rt.sessions() as s:
            rows = s.scalars(select(Delivery)).all()
        rt.close()
    # One timeout for the first recipient; the others of the batch fail fast (and are retried).
    assert elapsed < 3, elapsed
    assert (report["sent"], report["retried"], report["failed"]) == (0, 3, 0)
    assert all(r.status == "pending" and r.next_attempt_at > NOW for r in rows)
    assert any("1s" in r.last_error or "timed out" in r.last_error for r in rows)


def test_421_greeting_is_transient(make_config, tmp_path: Path) -> None:
    with ScriptedServer("busy") as server:
        rt = runtime_for(make_config, tmp_path, server.port, subscriptions=THREE)
        one_alert(rt)
        report = deliver(rt, now=NOW)
        with rt.sessions() as s:
            errors = s.scalars(select(Delivery.last_error)).all()
        rt.close()
        assert server.connections == 1
    assert (report["retried"], report["failed"]) == (3, 0)
    assert all("421" in e for e in errors)


def test_421_to_one_recipient_reconnects_for_the_others(make_config, tmp_path: Path) -> None:
    refuse = {"a@example.org": "421 4.7.0 closing connection, try later"}
    with MailSink(tmp_path / "box", refuse=refuse) as sink:
        rt = runtime_for(make_config, tmp_path, sink.port, subscriptions=THREE)
        one_alert(rt)
        report = deliver(rt, now=NOW)
        assert (report["sent"], report["retried"]) == (2, 1)
        assert sorted(parse(m)["To"] for m in sink.messages) == ["b@example.org", "c@example.org"]
        with rt.sessions() as s:
            status = dict(s.execute(select(Delivery.recipient, Delivery.status)).all())
        assert status["a@example.org"] == "pending"
        rt.close()


# ---------------------------------------------------------------------------- operator notices


def test_operator_notices_are_emailed_once(make_config, tmp_path: Path) -> None:
    subs = [{"id": "s", "recipients": ["ok@example.org", "gone@example.org"]}]
    with MailSink(tmp_path / "box", refuse={"gone@example.org": "550 5.1.1 no such user"}) as sink:
        rt = runtime_for(make_config, tmp_path, sink.port, subscriptions=subs)
        one_alert(rt)
        assert deliver(rt, now=NOW)["failed"] == 1
        health = check_health(rt, now=NOW)
        assert health["notices_emailed"] == 1
        assert check_health(rt, now=NOW + dt.timedelta(minutes=15))["notices_emailed"] == 0
        ops = [parse(m) for m in sink.messages if parse(m)["To"] == "ops@example.org"]
        assert len(ops) == 1 and "operator notice" in ops[0]["Subject"]
        text = ops[0].get_body(("plain",)).get_content()
        assert "gone@example.org" in text and "550" in text
        with rt.sessions() as s:
            assert all(n.sent_at is not None for n in s.scalars(select(Notice)))
        rt.close()


def test_operator_notice_kept_when_the_mail_server_is_down(make_config, tmp_path: Path) -> None:
    sink = MailSink(tmp_path / "box", refuse={"gone@example.org": "550 5.1.1 no such user"})
    subs = [{"id": "s", "recipients": ["gone@example.org"]}]
    with sink:
        rt = runtime_for(make_config, tmp_path, sink.port, subscriptions=subs)
        one_alert(rt)
        deliver(rt, now=NOW)
    assert check_health(rt, now=NOW)["notices_emailed"] == 0  # server down: kept for the next run
    with sink:
        assert check_health(rt, now=NOW + dt.timedelta(minutes=15))["notices_emailed"] == 1
        assert [parse(m)["To"] for m in sink.messages] == ["ops@example.org"]
    rt.close()
