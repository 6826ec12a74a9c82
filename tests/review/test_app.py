"""The review page over real HTTP (uvicorn on loopback): login, refusal of anonymous and forged
requests, CSRF, escaping, filters, the uncertainty queue, and labels from the email links."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest
from conftest import HOSTILE_TITLE, PASSWORD, SECRET, form_value
from helpers import NOW

from pipeline.jobs import Runtime, deliver
from pipeline.review.app import COOKIE
from pipeline.review.auth import make_session
from pipeline.review.labels import label_history
from pipeline.review.tokens import make_token


class Capture:
    """A mail sender that keeps what it is given (the SMTP path is tested in tests/deliver)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, EmailMessage]] = []

    def send(self, message: EmailMessage, recipient: str) -> None:
        self.sent.append((recipient, message))

    def close(self) -> None:
        pass


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _OPEN:
        _OPEN.pop().close()


def _client(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=10)
    _OPEN.append(client)
    return client


def _login(url: str) -> httpx.Client:
    client = _client(url)
    r = client.post("/login", data={"username": "ana", "password": PASSWORD, "next": "/"})
    assert r.status_code == 303 and COOKIE in r.cookies
    return client


@pytest.mark.parametrize("path", ["/", "/queue", "/feedback?t=x", "/?regime=dprk"])
def test_anonymous_and_forged_requests_get_no_data(review_server, path: str) -> None:
    forged = make_session("another secret entirely, 40 chars long!!", "ana", now=NOW)[0]
    body, _, sig = make_session(SECRET, "ana", now=NOW)[0].partition(".")
    altered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + sig
    expired = make_session(SECRET, "ana", now=NOW - timedelta(hours=13))[0]
    for cookie in (None, forged, altered, expired, "garbage"):
        client = _client(review_server.url)
        if cookie:
            client.cookies.set(COOKIE, cookie)
        r = client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        assert "Tanker" not in r.text
        r = client.post("/label", data={"csrf": "x", "article_id": "1", "label": "relevant"})
        assert r.status_code == 403
    with _client(review_server.url) as client:
        assert client.get("/login").status_code == 200


def test_login_refuses_a_wrong_password_and_an_open_redirect(review_server) -> None:
    client = _client(review_server.url)
    r = client.post("/login", data={"username": "ana", "password": "wrong password!!"})
    assert r.status_code == 401 and COOKIE not in r.cookies
    r = client.post("/login", data={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401
    r = client.post(
        "/login", data={"username": "ana", "password": PASSWORD, "next": "//evil.example/"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_pages_escape_feed_text_and_send_a_strict_policy(review_server) -> None:
    client = _login(review_server.url)
    r = client.get("/")
    assert r.status_code == 200
    assert "<script>" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;" in r.text and "&lt;b&gt;bold&lt;/b&gt;" in r.text
    assert "javascript:" not in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"


def test_filters_and_the_uncertainty_queue(review_server) -> None:
    client = _login(review_server.url)
    a, b, c = review_server.articles

    def shown(query: str) -> set[int]:
        html = client.get("/" + query).text
        return {int(x) for x in re.findall(r'data-article="(\d+)"', html)}

    assert shown("") == {a, b, c}
    assert shown("?regime=iran") == {b}
    assert shown("?band=near") == {c}
    assert shown("?feed=wire&lang=en") == {a}
    assert shown("?since=2099-01-01") == set()
    queue = re.findall(r'data-article="(\d+)"', client.get("/queue").text)
    assert int(queue[0]) == c  # 0.46 against 0.5: nearest the threshold first


def test_labelling_needs_the_sessions_csrf_token(review_server) -> None:
    client = _login(review_server.url)
    a = review_server.articles[0]
    csrf = form_value(client.get("/").text, "csrf")
    for bad in ("", "x" * 32):
        r = client.post("/label", data={"csrf": bad, "article_id": a, "label": "relevant"})
        assert r.status_code == 403
    r = client.post(
        "/label", data={"csrf": csrf, "article_id": a, "label": "unsure", "note": "<i>check</i>"}
    )
    assert r.status_code == 303
    with Runtime.open(review_server.config) as rt, rt.sessions() as s:
        (event,) = label_history(s, a)
    assert (event.label, event.analyst, event.via, event.model_version) == (
        "unsure", "ana", "review", "test-v1",
    )  # fmt: skip
    assert event.note == "<i>check</i>"


def test_email_links_are_signed_single_purpose_and_spent_once(review_server) -> None:
    capture = Capture()
    with Runtime.open(review_server.config) as rt:
        deliver(rt, now=NOW, sender=capture)
    assert capture.sent
    recipient, message = capture.sent[0]
    assert message["Reply-To"] == "analysts@example.org"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    links = re.findall(r"(http://127\.0\.0\.1:\d+/feedback\?t=\S+)", text)
    assert len(links) == 2 and all(link.replace("&", "&amp;") in html for link in links)
    relevant = next(link for link in links if text.split(link)[0].rstrip().endswith("Relevant:"))
    token = unquote(parse_qs(urlparse(relevant).query)["t"][0])

    client = _login(review_server.url)
    page = client.get(urlparse(relevant).path + "?" + urlparse(relevant).query)
    assert page.status_code == 200
    assert re.search(r'<option value="relevant" selected>', page.text)
    csrf, article_id = form_value(page.text, "csrf"), int(form_value(page.text, "article_id"))
    data = {"csrf": csrf, "article_id": article_id, "label": "relevant", "token": token}
    assert client.post("/label", data=data).status_code == 303
    again = client.post("/label", data=data)
    assert again.headers["location"].endswith("done=spent")
    other = next(a for a in review_server.articles if a != article_id)
    assert client.post("/label", data={**data, "article_id": other}).status_code == 400
    with Runtime.open(review_server.config) as rt, rt.sessions() as s:
        events = label_history(s, article_id)
        assert label_history(s, other) == []
    assert [(e.label, e.via, e.analyst) for e in events] == [("relevant", "email", "ana")]

    # A token names its alert, label and recipient: any change breaks the signature.
    body, _, sig = token.partition(".")
    forged = make_token("x" * 40, alert_id=999, label="relevant", recipient=recipient,
                        expires_at=NOW + timedelta(days=1))  # fmt: skip
    expired = make_token(SECRET, alert_id=1, label="relevant", recipient=recipient,
                         expires_at=NOW - timedelta(seconds=1))  # fmt: skip
    for bad, reason in ((forged, "signature"), (body + "." + sig[:-3] + ("AAA" if sig[-3:] != "AAA" else "BBB"), "signature"),
                        (expired, "expired"), ("", "malformed")):  # fmt: skip
        r = client.get("/feedback", params={"t": bad})
        assert r.status_code == 400 and reason in r.text
    assert HOSTILE_TITLE not in page.text
