"""The playground page in headless Chromium: it loads, a rerank from the form shows ranked
results with explanations and the health panel, and a screenshot is saved; on a server with
API keys it asks for the key first, reloads what needed it, keeps it for the tab and says
plainly when a key is wrong; at phone width nothing is wider than the screen.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Skipped when
they are missing, except under CI (``CI=true``), where their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.insight.conftest import API_KEY

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
REPO = Path(__file__).resolve().parents[2]


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}: required under CI (apt-get install chromium chromium-driver)")
    pytest.skip(f"{what}: not installed")


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("the selenium package")
    if CHROMIUM is None or CHROMEDRIVER is None:
        _missing("Chromium and chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="rankgate-chromium-")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1200,1500", f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    # An explicit driver path keeps Selenium Manager from looking for one online.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_rerank_from_the_form(browser: Any, live_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(live_url + "/")
    assert browser.title == "rankgate playground"
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scenario option")) > 10)
    assert not browser.find_element(By.ID, "key-panel").is_displayed()  # no key needed here

    Select(browser.find_element(By.ID, "scenario")).select_by_visible_text(
        "tesla-winter-range [en]: Keyword trap: Tesla Model Y winter range"
    )
    assert browser.find_element(By.ID, "query").get_attribute("value").startswith("Does the Tesla")
    assert "Expected best: C" in browser.find_element(By.ID, "expected").text

    browser.find_element(By.ID, "rerank").click()
    wait.until(lambda d: d.find_element(By.ID, "results-panel").get_attribute("data-state")
               in ("done", "error"))  # fmt: skip
    assert browser.find_element(By.ID, "error").text == ""
    rows = browser.find_elements(By.CSS_SELECTOR, "#results li.result")
    assert len(rows) == 3
    # The keyword stand-in model falls for the trap: B repeats the query's words.
    assert rows[0].get_attribute("data-doc-id") == "B"
    scores = [float(r.find_element(By.CLASS_NAME, "score").text) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert rows[0].find_elements(By.CSS_SELECTOR, ".text mark")  # explanation highlights
    wait.until(lambda d: "1 reranks in the window" in d.find_element(By.ID, "health-window").text)
    verdict = browser.find_element(By.CSS_SELECTOR, 'tr[data-metric="displacement"] .verdict')
    assert verdict.text in ("ok", "ALERT")

    shot = tmp_path / "playground.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes().startswith(b"\x89PNG")
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    shutil.copyfile(shot, out / "playground.png")


def test_own_documents_and_errors(browser: Any, live_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(live_url + "/")
    browser.find_element(By.ID, "query").send_keys("reset router admin password")
    docs = browser.find_element(By.ID, "documents")
    docs.send_keys(
        "<img src=x onerror=alert(1)> specs\nWAN port FAQ\nreset the router admin password"
    )
    browser.find_element(By.ID, "explain").click()  # off: scores only
    browser.find_element(By.ID, "rerank").click()
    wait.until(
        lambda d: d.find_element(By.ID, "results-panel").get_attribute("data-state") == "done"
    )
    rows = browser.find_elements(By.CSS_SELECTOR, "#results li.result")
    assert rows[0].get_attribute("data-index") == "2"
    hostile = next(r for r in rows if r.get_attribute("data-index") == "0")
    assert hostile.find_element(By.CLASS_NAME, "text").text.startswith("<img")  # shown, not run
    assert not browser.find_elements(By.CSS_SELECTOR, "#results img")


def _state(browser: Any, element_id: str) -> str | None:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id).get_attribute("data-state")


def _enter_key(browser: Any, key: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, "api-key")
    field.clear()
    field.send_keys(key)
    browser.find_element(By.ID, "use-key").click()


def _stored(browser: Any) -> tuple[Any, Any]:
    return browser.execute_script(
        "return [sessionStorage.getItem('rankgate.api-key'), localStorage.length];"
    )


def test_api_key_asked_first_then_everything_loads(browser: Any, keyed_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(keyed_url + "/")
    wait.until(lambda d: _state(d, "key-panel") == "needed")
    # A calm prompt, not errors: nothing red, no status codes on the page.
    status = browser.find_element(By.ID, "key-status")
    assert status.get_attribute("class") == "note" and "needs an API key" in status.text
    assert not browser.find_element(By.ID, "error").is_displayed()
    assert "401" not in browser.find_element(By.TAG_NAME, "body").text
    assert browser.execute_script("return document.activeElement.id;") == "api-key"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#scenario option")) == 1

    _enter_key(browser, "not-the-key")
    wait.until(lambda d: _state(d, "key-panel") == "refused")
    refused = browser.find_element(By.ID, "key-status")
    assert "did not accept this API key" in refused.text
    assert refused.get_attribute("class") == "error"
    assert _stored(browser) == [None, 0]  # a refused key is not kept

    _enter_key(browser, API_KEY)
    wait.until(lambda d: _state(d, "key-panel") == "accepted")
    # What failed without the key is loaded now: the scenarios and ranking health.
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scenario option")) > 10)
    wait.until(lambda d: "reranks in the window" in d.find_element(By.ID, "health-window").text)
    assert _stored(browser) == [API_KEY, 0]  # this tab's sessionStorage, never localStorage
    assert API_KEY not in browser.current_url

    # A reload keeps the key for the tab: no prompt, the scenarios come straight back.
    browser.refresh()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scenario option")) > 10)
    assert _state(browser, "key-panel") == "accepted"
    Select(browser.find_element(By.ID, "scenario")).select_by_index(1)
    browser.find_element(By.ID, "rerank").click()
    wait.until(lambda d: _state(d, "results-panel") in ("done", "error"))
    assert _state(browser, "results-panel") == "done"
    assert browser.find_elements(By.CSS_SELECTOR, "#results li.result")

    browser.find_element(By.ID, "forget-key").click()
    assert _state(browser, "key-panel") == "needed" and _stored(browser) == [None, 0]


def _overflow(browser: Any) -> tuple[int, int]:
    return browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth];"
    )


def test_fits_a_phone(browser: Any, keyed_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.set_window_size(375, 812)
    browser.get(keyed_url + "/")
    assert browser.execute_script("return window.innerWidth;") <= 375
    wait.until(lambda d: _state(d, "key-panel") == "needed")
    width, inner = _overflow(browser)
    assert width <= inner, (width, inner)

    _enter_key(browser, API_KEY)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#scenario option")) > 10)
    Select(browser.find_element(By.ID, "scenario")).select_by_visible_text(
        "tesla-winter-range [en]: Keyword trap: Tesla Model Y winter range"
    )
    browser.find_element(By.ID, "rerank").click()
    wait.until(lambda d: "explained" in d.find_element(By.ID, "status").text)
    wait.until(lambda d: "reranks in the window" in d.find_element(By.ID, "health-window").text)
    width, inner = _overflow(browser)
    assert width <= inner, (width, inner)
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(out / "playground-phone.png"))
