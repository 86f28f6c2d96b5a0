"""A steward works the review queue in a real browser (headless Debian Chromium, no browser download).

Set ``CRM_MIGRATE_SCREENSHOTS=docs/img`` to refresh the README's screenshots from this run.
"""

from __future__ import annotations

import http.server
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from migrate.review import decision_log, list_items
from migrate.web.server import ReviewServer
from tests.review_queue import Queue, change_record

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# CI installs Debian's chromium and chromium-driver; there a missing browser is a failure, not a skip.
if not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"):
    pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402  (after the skip: selenium is a test extra)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,860"]


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    profile = tempfile.mkdtemp(prefix="crm-migrate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def server(queue: Queue) -> Iterator[ReviewServer]:
    srv = ReviewServer(queue.project, port=0, who="steward")
    srv.start()
    yield srv
    srv.stop()


def wait_for_page(driver: webdriver.Chrome, path_start: str) -> None:
    WebDriverWait(driver, 10).until(lambda d: d.current_url.split("/", 3)[-1].startswith(path_start.lstrip("/"))
                                    and d.execute_script("return document.readyState") == "complete")


def press(driver: webdriver.Chrome, key: str) -> None:
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def queue_ids(driver: webdriver.Chrome) -> list[str]:
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.queue tbody td:first-child a")]


def screenshot(driver: webdriver.Chrome, name: str, tmp_path: Path) -> None:
    """Save a screenshot (a real PNG), and into the docs when asked to refresh them."""
    path = tmp_path / name
    assert driver.save_screenshot(str(path)) and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("CRM_MIGRATE_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["CRM_MIGRATE_SCREENSHOTS"]) / name)


def open_items(q: Queue) -> set[str]:
    return set(list_items(q.project.workspace())["item_id"])


def test_a_steward_filters_the_queue_and_decides_with_the_keyboard(browser, server, queue, tmp_path):
    browser.get(server.url)
    wait_for_page(browser, "/")
    assert "token" not in browser.current_url  # swapped for a cookie at once
    assert queue_ids(browser) == [queue.conflict, queue.strong_pair, queue.weak_pair]
    screenshot(browser, "review-queue.png", tmp_path)

    Select(browser.find_element(By.NAME, "kind")).select_by_value("pair")  # applies at once (script)
    wait_for_page(browser, "/?kind=pair")
    assert queue_ids(browser) == [queue.strong_pair, queue.weak_pair]
    press(browser, "j")
    press(browser, Keys.ENTER)
    wait_for_page(browser, f"/items/{queue.strong_pair}")
    assert browser.find_element(By.CSS_SELECTOR, ".pager .muted").text == "1 of 2"
    assert [c.text for c in browser.find_elements(By.CSS_SELECTOR, "table.records td.differs")] == ["Bob", "Robert"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.neg")) == 2  # prior and phone pull down
    screenshot(browser, "review-item.png", tmp_path)

    press(browser, "j")
    wait_for_page(browser, f"/items/{queue.weak_pair}")
    press(browser, "k")
    wait_for_page(browser, f"/items/{queue.strong_pair}")
    press(browser, "?")
    assert browser.find_element(By.ID, "help").is_displayed()
    press(browser, "n")
    wait_for_page(browser, f"/items/{queue.weak_pair}")
    assert queue.strong_pair in browser.find_element(By.ID, "decided").text

    log = decision_log(queue.project.workspace())
    assert log[["item_id", "constraint", "who"]].values.tolist() == [[queue.strong_pair, "cannot_link", "steward"]]
    assert open_items(queue) == {queue.weak_pair, queue.conflict}
    listed = CliRunner().invoke(main, ["review", "list", "-p", str(queue.project.dir)])
    assert listed.exit_code == 0, listed.output
    assert queue.weak_pair in listed.output and queue.strong_pair not in listed.output


def test_a_steward_keeps_one_value_of_a_conflict_with_a_note(browser, server, queue):
    browser.get(server.url)
    browser.get(f"{server.base}/items/{queue.conflict}")
    browser.find_element(By.CSS_SELECTOR, "input[name=value][value=Londres]").click()
    browser.find_element(By.NAME, "note").send_keys("the customer lives in Paris now")
    browser.find_element(By.ID, "pick").click()
    wait_for_page(browser, f"/items/{queue.strong_pair}")
    log = decision_log(queue.project.workspace())
    assert log[["item_id", "attribute", "value", "note"]].values.tolist() == [
        [queue.conflict, "city", '"Londres"', "the customer lives in Paris now"]]
    browser.get(f"{server.base}/log")
    assert "the customer lives in Paris now" in browser.find_element(By.CSS_SELECTOR, "table.log").text


def test_a_decision_on_records_that_changed_meanwhile_is_refused_with_what_changed(browser, server, queue):
    browser.get(server.url)
    browser.get(f"{server.base}/items/{queue.weak_pair}")
    change_record(queue.project, "contacts:c4", first_name="Zoe")
    press(browser, "m")
    wait_for_page(browser, f"/items/{queue.weak_pair}/decide")
    assert browser.title.startswith("409")
    assert "contacts:c4 changed (first_name 'Zoë' -> 'Zoe')" in browser.find_element(By.ID, "error-detail").text
    assert decision_log(queue.project.workspace()).empty
    browser.find_element(By.ID, "reload").click()
    wait_for_page(browser, f"/items/{queue.weak_pair}")
    assert "Zoe" in browser.find_element(By.CSS_SELECTOR, "table.records").text


def test_unknown_items_are_404_pages_and_strangers_get_403(browser, server, queue):
    browser.get(server.url)
    browser.get(f"{server.base}/items/P-0000000000")
    assert browser.title.startswith("404")
    browser.delete_all_cookies()
    browser.get(f"{server.base}/")
    assert browser.title.startswith("403")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{server.base}/log", timeout=10)
    assert refused.value.code == 403


def test_a_page_on_another_origin_cannot_make_a_decision(browser, server, queue, tmp_path):
    """The hardest case: same site (127.0.0.1), so the browser does send the cookie; Origin and form token stop it."""
    (tmp_path / "evil.html").write_text(
        f"<form method=post action='{server.base}/items/{queue.strong_pair}/decide'>"
        "<input name=decision value=match></form><script>document.forms[0].submit()</script>")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        browser.get(server.url)  # the steward is signed in
        browser.get(f"http://127.0.0.1:{evil.server_address[1]}/evil.html")
        wait_for_page(browser, f"items/{queue.strong_pair}/decide")
        assert browser.title.startswith("403")
        # Refused by the origin check, not for want of the cookie:
        detail = browser.find_element(By.ID, "error-detail").text
        assert f"sent from http://127.0.0.1:{evil.server_address[1]}" in detail
    finally:
        evil.shutdown()
    assert decision_log(queue.project.workspace()).empty
    assert queue.strong_pair in open_items(queue)
