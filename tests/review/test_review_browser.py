"""The review page in a real browser (Debian's chromium, headless, driven by Playwright's Python client
through ``executable_path``; no browser is downloaded): log in, filter, label from the list, from the
uncertainty queue and through an alert email's link. Each step's screenshot is written to
docs/analyst-guide/ (docs/analyst-guide.md shows them). Skipped, with the reason, without chromium or
Playwright.
"""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import PASSWORD
from helpers import NOW, ROOT
from test_app import Capture

from pipeline.jobs import Runtime, deliver
from pipeline.review.labels import current_labels, label_history

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "docs" / "analyst-guide"

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
if not shutil.which(CHROMIUM):
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)


def test_an_analyst_logs_in_filters_and_labels_three_items(review_server) -> None:
    a, b, c = review_server.articles
    capture = Capture()
    with Runtime.open(review_server.config) as rt:
        deliver(rt, now=NOW, sender=capture)
    text = capture.sent[0][1].get_body(("plain",)).get_content()
    link = re.search(r"Not relevant: (http://\S+)", text).group(1)
    SHOTS.mkdir(parents=True, exist_ok=True)

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(review_server.url + "/")
            assert "/login" in page.url  # anonymous: sent to the login form, no data
            page.fill("input[name=username]", "ana")
            page.fill("input[name=password]", PASSWORD)
            page.screenshot(path=SHOTS / "01-login.png")
            page.click("button[type=submit]")
            page.wait_for_selector(".item")
            assert page.locator(".item").count() == 3
            # hostile feed text shows as text; no script ran, no element was injected
            assert page.locator("script, img").count() == 0
            page.screenshot(path=SHOTS / "02-items.png", full_page=True)

            page.select_option("select[name=regime]", "iran")
            page.click("form.filters button[type=submit]")
            page.wait_for_url(re.compile(r"regime=iran"))
            assert page.locator(".item").count() == 1
            assert page.locator(f"#item-{b}").count() == 1
            page.screenshot(path=SHOTS / "03-filtered.png", full_page=True)

            item = page.locator(f"#item-{b}")
            item.locator("input[name=note]").fill("Iranian drone parts: matches the 2231 annex")
            item.locator("button[value=relevant]").click()
            page.wait_for_selector("text=Label recorded.")
            page.screenshot(path=SHOTS / "04-labelled.png", full_page=True)

            page.goto(review_server.url + "/queue")
            first = page.locator(".item").first
            assert first.get_attribute("data-article") == str(c)  # nearest the threshold
            page.screenshot(path=SHOTS / "05-queue.png", full_page=True)
            first.locator("button[value=unsure]").click()
            page.wait_for_selector("text=Label recorded.")

            page.goto(link)  # the email's "Not relevant" link: the label arrives pre-filled
            assert page.locator("select[name=label]").input_value() == "not_relevant"
            page.locator("input[name=note]").fill("A drill, no transfer")
            page.screenshot(path=SHOTS / "06-email-link.png", full_page=True)
            page.click("#confirm button[type=submit]")
            page.wait_for_selector("text=Label recorded.")
        finally:
            browser.close()

    with Runtime.open(review_server.config) as rt, rt.sessions() as s:
        labels = current_labels(s)
        emailed = [e for e in label_history(s, a) if e.via == "email"]
    assert {k: v.label for k, v in labels.items()} == {
        b: "relevant", c: "unsure", a: "not_relevant"
    }  # fmt: skip
    assert all(v.analyst == "ana" for v in labels.values())
    assert len(emailed) == 1 and emailed[0].note == "A drill, no transfer"
    for name in ("01-login", "02-items", "03-filtered", "04-labelled", "05-queue", "06-email-link"):
        assert (SHOTS / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
