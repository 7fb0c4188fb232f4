"""The built site in a real browser: the system's headless Chromium through Selenium (nothing is
downloaded), served from 127.0.0.1. Run with `pytest -m browser` (`.ci/run` does)."""

import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from gahb_bench.cli import main
from gahb_bench.leaderboard.entry import entry_id, seal
from helpers import XSS, add_hostile_entry

pytestmark = pytest.mark.browser
webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SCORE = "Excess train−test gap at the largest N"


@pytest.fixture()
def site(board):
    """A built site with two entries whose excess gaps differ, served on 127.0.0.1: (its URL, the
    hostile entry's id)."""
    folder, path = board
    hostile = add_hostile_entry(folder, path)
    entry_file = folder / "entries" / f"{hostile}.json"
    entry = json.loads(entry_file.read_text())
    entry["scores"]["excess_gap_db"]["value"] = 99.0
    entry_file.write_text(json.dumps(seal(entry)))
    # A second table (the same two entries under another preset): every table must sort.
    for source in (entry, json.loads(path.read_text())):
        copy = dict(source, preset="other")
        copy["id"] = entry_id(copy)
        (folder / "entries" / f"{copy['id']}.json").write_text(json.dumps(seal(copy)))
        shutil.copytree(folder / "figures" / source["id"], folder / "figures" / copy["id"])
    assert main(["leaderboard", "build", str(folder)]) == 0
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hostile
    server.shutdown()


@pytest.fixture()
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("needs the system chromium and chromedriver (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def _column(driver, title, table=0):
    table = driver.find_elements("css selector", "table.sortable")[table]
    headers = table.find_elements("css selector", "th")
    index = next(i for i, th in enumerate(headers) if th.text.startswith(title))
    return headers[index], [row.find_elements("css selector", "td")[index].get_attribute("data-value")
                            for row in table.find_elements("css selector", "tbody tr")]


def test_the_site_sorts_shows_its_figures_and_runs_no_entry_script(site, browser, tmp_path):
    site, hostile = site
    browser.get(f"{site}/index.html")
    header, _ = _column(browser, SCORE)
    header.click()
    _, ascending = _column(browser, SCORE)
    assert [float(v) for v in ascending] == sorted(float(v) for v in ascending) and len(ascending) == 2
    header.click()
    _, descending = _column(browser, SCORE)
    assert descending == ascending[::-1] and float(descending[0]) == 99.0
    assert browser.execute_script("return window.__xss") is None
    header, _ = _column(browser, SCORE, table=1)  # the second table sorts too
    header.click()
    header.click()
    assert [float(v) for v in _column(browser, SCORE, table=1)[1]] == sorted(float(v) for v in ascending)[::-1]
    shots = Path(os.environ.get("GAHB_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / "leaderboard-index.png"))

    browser.find_element("link text", "tiny-cnn").click()
    sizes = browser.execute_script("return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
    assert sizes and all(width > 0 for width in sizes)
    assert "tiny-cnn" in browser.find_element("tag name", "h1").text
    browser.save_screenshot(str(shots / "leaderboard-entry.png"))
    # The hostile entry's own page shows its markup as text and runs none of it.
    browser.get(f"{site}/entries/{hostile}.html")
    assert XSS in browser.find_element("tag name", "h1").text
    assert browser.execute_script("return window.__xss") is None
    assert not browser.find_elements("css selector", "a[href^='javascript']")
    print(f"screenshots: {shots / 'leaderboard-index.png'}, {shots / 'leaderboard-entry.png'}")
