"""Hazard: email header injection through RFC 2047 encoded-words (issue 10; the CVE-2024-6923 class).

A feed title such as ``=?utf-8?q?x=0D=0ABcc:_evil@example.org?=`` holds no raw CR/LF, so it passes
``one_line()``; but the email library decodes the encoded-word while it folds the Subject and, on the
interpreters that predate the fix (CPython 3.11.7 here), writes the decoded CR/LF out: the alert
carries a real ``Bcc:`` line. The project must be safe on every interpreter it allows.

Pass criterion: the message as it goes on the wire (``as_bytes``, and parsed back) has exactly the
header lines the project writes, once each, and nothing else:

* a property-based run (hypothesis) over the real renderer and :func:`build_message`, with
  arbitrary titles, source names, regime keys and recipient display names mixed with encoded-words
  whose payloads decode to CR/LF, bare CR/LF, Unicode line separators and header-looking text;
* the whole cycle: ``run-once`` in a subprocess, a loopback feed whose flagged item's title carries
  the encoded-word, the real SMTP sink: the delivered message has no ``Bcc``/``X-Injected`` header.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from hazardkit import FLAGGED, RECIPIENT, rss, run_cli, sample_items, write_feed
from helpers import write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.alerts.views import AlertView, RegimeView, SourceView
from pipeline.deliver.mail import build_message
from pipeline.deliver.render import render_alert

T = datetime(2026, 3, 15, 6, 10, tzinfo=UTC)
SENDER = "sanctions-watch <alerts@sw.example>"
ADDRESS = "compliance@example.org"
# The header lines build_message writes (lower-cased), in a multipart/alternative message.
TOP_HEADERS = [
    "subject",
    "from",
    "to",
    "message-id",
    "date",
    "auto-submitted",
    "x-auto-response-suppress",
    "content-type",
    "mime-version",
]
PART_HEADERS = {"content-type", "content-transfer-encoding", "mime-version"}

# Encoded-words whose payloads decode to line breaks followed by a header, in both encodings and
# several charsets; and other things a header folder may trip on.
INJECTIONS = [
    "=?utf-8?q?x=0D=0ABcc:_evil@example.org?=",
    "=?UTF-8?Q?=0D=0AX-Injected:_yes?=",
    "=?utf-8?q?x=0D=0ABcc:_evil@example.org=0D=0AX-Injected:_yes?=",
    "=?utf-8?b?eA0KQmNjOiBldmlsQGV4YW1wbGUub3Jn?=",  # "x\r\nBcc: evil@example.org"
    "=?iso-8859-1?q?=0ABcc:_evil@example.org?=",
    "=?us-ascii?Q?=0D?==?us-ascii?Q?=0ABcc:_e@x.org?=",
    "=?utf-8*en?q?=0D=0AX-Injected:_1?=",
    '"=?utf-8?q?=0D=0ABcc:_q@example.org?="',
    "=?utf-8?q?=0D=0A=0D=0A<script>?=",
    "\r\nBcc: raw@example.org",
    "\nX-Injected: raw",
    "\u2028X-Injected: ls",
    "\x85Bcc: nel@example.org",
    "=?",
    "?=",
    "Bcc: plain@example.org",
]
_PIECES = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(max_size=40),
    st.text(alphabet="=?qQbB_ :-x\r\n\"'<>,;@()\\", max_size=20),
    st.sampled_from(["Nampo", "Pyongyang", "Rüstung", "中文标题", "армия", " ", "x" * 90]),
)
_TEXT = st.lists(_PIECES, max_size=8).map("".join)
# A display name: anything but the address specials, which would make the operator's recipient
# string ("Name <addr>") another address (recipients in subscriptions.yaml are bare addresses).
_SPECIALS = str.maketrans("", "", '()<>[]:;@\\,"')
_NAME = st.lists(_PIECES, max_size=4).map(lambda parts: "".join(parts).translate(_SPECIALS))
_REGIME_KEYS = st.lists(
    st.one_of(st.sampled_from(["dprk", "libya", "south_sudan"]), _TEXT), max_size=3
).map(tuple)

DPRK = RegimeView(
    "dprk",
    "Democratic People's Republic of Korea",
    "1718 Committee",
    "https://main.un.org/securitycouncil/en/sanctions/1718",
    (1718,),
)


def _view(title: str, sources: list[str], regime_keys: tuple[str, ...], kind: str) -> AlertView:
    return AlertView(
        alert_id=7,
        title=title,
        summary="Shells reached the port. " + title,
        url="https://news.example/a",
        lang="en",
        first_seen_at=T,
        published_at=T,
        score=0.97,
        threshold=0.5,
        model_version="hazard-v1",
        severity="high",
        severity_reason="score 0.97",
        sources=tuple(SourceView(name, "https://news.example/s", T, name) for name in sources),
        evidence_sentences=(title,),
        regimes=(DPRK,),
        kind=kind,
        previous_severity="medium" if kind == "update" else None,
        regime_keys=regime_keys,
    )


def _header_names(block: bytes) -> list[str]:
    """The names of the header lines of one header block, as a reader of the wire sees them."""
    names = []
    for line in block.split(b"\r\n"):
        if not line or line[:1] in (b" ", b"\t"):
            continue  # a continuation of the previous header
        names.append(line.split(b":", 1)[0].decode("ascii", "replace").lower())
    return names


def _check_wire(raw: bytes, recipient_addr: str, *, reply_to: str | None = None) -> EmailMessage:
    """Every header block on the wire holds only the lines the project writes; parsed back, the
    message has exactly those headers and one address in To (and the operator's Reply-To)."""
    expected = sorted(TOP_HEADERS + (["reply-to"] if reply_to else []))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert sorted(_header_names(head)) == expected, head.decode("ascii", "replace")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    # Each MIME part's header block (after a boundary line) holds only the MIME headers.
    boundary = parsed.get_boundary()
    assert boundary
    blocks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode())
    assert len(blocks) == 4 and blocks[-1].startswith(b"--"), len(blocks)  # two parts, closed
    for block in blocks[1:-1]:
        part_head = block.partition(b"\r\n")[2].partition(b"\r\n\r\n")[0]
        assert set(_header_names(part_head)) <= PART_HEADERS, part_head
    assert sorted(k.lower() for k in parsed) == expected, parsed.keys()
    for forbidden in ("Bcc", "Cc", "X-Injected"):
        assert parsed[forbidden] is None
    assert str(parsed["Reply-To"] or "") == (reply_to or "")
    subject = str(parsed["Subject"])
    assert not any(c in subject for c in "\r\n\x00\u2028\x85"), repr(subject)
    to = parsed["To"]
    assert len(to.addresses) == 1 and to.addresses[0].addr_spec == recipient_addr, str(to)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    return parsed


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=_TEXT,
    sources=st.lists(_TEXT, max_size=3),
    regime_keys=_REGIME_KEYS,
    name=_NAME,
    kind=st.sampled_from(["new", "update"]),
    reply_to=st.sampled_from([None, "analysts@example.org"]),
)
def test_rendered_messages_carry_exactly_the_headers_the_project_writes(
    title: str,
    sources: list[str],
    regime_keys: tuple[str, ...],
    name: str,
    kind: str,
    reply_to: str | None,
) -> None:
    rendered = render_alert(_view(title, sources, regime_keys, kind))
    recipient = f"{name} <{ADDRESS}>" if name.strip() else ADDRESS
    msg = build_message(
        rendered,
        sender=SENDER,
        recipient=recipient,
        message_id="<sw.7.x@sw.example>",
        date=T,
        reply_to=reply_to,
    )
    parsed = _check_wire(msg.as_bytes(), ADDRESS, reply_to=reply_to)
    # The subject still says what the alert is about: only the alert's own words, on one line.
    assert str(parsed["Subject"]).startswith("[sanctions-watch] ")


@pytest.mark.parametrize("payload", INJECTIONS[:9])
def test_each_known_encoded_word_injection_is_neutralised(payload: str) -> None:
    title = f"{FLAGGED['origin']} {payload}"
    msg = build_message(
        render_alert(_view(title, ["Wire"], ("dprk",), "new")),
        sender=SENDER,
        recipient=f"{payload.translate(_SPECIALS)} <{ADDRESS}>",
        message_id="<sw.7.x@sw.example>",
        date=T,
    )
    for raw in (msg.as_bytes(), msg.as_string().encode("utf-8")):
        parsed = _check_wire(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), ADDRESS)
        assert "North Korea suspected" in str(parsed["Subject"])


@pytest.mark.parametrize("payload", INJECTIONS[:9])
def test_the_folded_header_check_holds_on_its_own(
    payload: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: with the encoded-word neutralisation switched off, the check of the folded
    headers still catches the injected line and the message goes out with a plain subject."""
    from pipeline.deliver import mail
    from pipeline.deliver.render import one_line

    monkeypatch.setattr(mail, "header_text", lambda text, limit: one_line(text, limit))
    title = f"{FLAGGED['origin']} {payload}"
    msg = build_message(
        render_alert(_view(title, ["Wire"], ("dprk",), "new")),
        sender=SENDER,
        recipient=f"{payload.translate(_SPECIALS)} <{ADDRESS}>",
        message_id="<sw.7.x@sw.example>",
        date=T,
    )
    parsed = _check_wire(msg.as_bytes(), ADDRESS)
    assert "North Korea suspected" in str(parsed["Subject"])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_encoded_word_in_a_feed_title_injects_no_header_through_run_once(
    feed_dir, feed_dir_server, mail_sink, tmp_path
) -> None:
    s = sample_items()
    payload = "=?utf-8?q?x=0D=0ABcc:_evil@example.org=0D=0AX-Injected:_yes?="
    items = [
        {
            "title": f"{s['origin']['title']} =?utf-8?q?x=0D=0ABcc:_evil@example.org?=",
            "link": "https://inject.example/1",
            "description": s["origin"]["summary"],
        },
        {
            "title": f"{payload} {s['tanker']['title']}",
            "link": "https://inject.example/2",
            "description": s["tanker"]["summary"],
        },
    ]
    write_feed(feed_dir, "inject.xml", rss(items, title=payload))
    config_dir = write_config(
        tmp_path / "config",
        database_url=f"sqlite:///{tmp_path / 'sw.db'}",
        feeds=[{"id": "inject", "name": payload, "url": feed_dir_server.url_for("inject.xml")}],
        smtp_port=mail_sink.port,
        subscriptions=[{"id": "compliance", "recipients": [RECIPIENT]}],
    )
    out = run_cli(config_dir, timeout=200)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["alerts_sent"] >= 1, summary  # the model flags these stories
    to_recipient = [m for m in mail_sink.messages if RECIPIENT.encode() in m.split(b"\r\n\r\n")[0]]
    assert to_recipient, "no alert reached the recipient"
    for raw in to_recipient:
        parsed = _check_wire(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), RECIPIENT)
        assert parsed["Bcc"] is None and parsed["X-Injected"] is None
