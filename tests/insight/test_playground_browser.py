"""The playground page in headless Chromium: it loads, a rerank from the form shows ranked
results with explanations and the health panel, and a screenshot is saved.

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
