"""The live page in a real headless browser: Debian's Chromium driven through its ChromeDriver by
Selenium, against the real server listening to two espeak sessions replayed at real-time pace.

The run also writes the README's screenshot, docs/serve-page.png.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from atc_whisper.data.catalogue import Catalogue
from atc_whisper.live.simulate import synthetic_session
from serve_helpers import ServerProcess, ct2_workspace

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "page-token-77"
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "serve-page.png"
TOWER = ["november one two three alpha bravo cleared to land runway two seven",
         "american one two three contact tower one one eight decimal seven",
         "delta two three four climb flight level three five zero"]
APPROACH = ["speedbird one two three turn left heading two seven zero",
            "delta two three four descend flight level one two zero"]
CORRECTED = "speedbird one two three turn left heading two seven zero"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver (make test installs them)"),
]


@pytest.fixture(scope="module")
def ct2_cache(tiny_en, session_workspace):
    from atc_whisper.models.export import export_ct2

    export_ct2(tiny_en.hf_dir, session_workspace, quantization="int8")
    return session_workspace.ct2_dir


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
                 "--window-size=1500,950", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def _cards(driver, frequency: str):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f'.column[data-frequency="{frequency}"] .tx')


def _wait(predicate, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_live_page_shows_corrects_searches_and_exports(tmp_path, tiny_en, ct2_cache, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    ws = ct2_workspace(tmp_path / "ws", ct2_cache)
    tower = synthetic_session(TOWER, gaps_s=1.5, lead_s=0.5, tail_s=1.0, seed=11).write_wav(tmp_path / "tower.wav")
    approach = synthetic_session(APPROACH, gaps_s=2.0, lead_s=2.0, tail_s=1.0, seed=12).write_wav(tmp_path / "approach.wav")
    # A pilot readback as the readback check stores it (role, exchange, readback in the row), so the
    # page's rendering of a mismatch is exercised before that check feeds live records.
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        catalogue.add_transcripts([{
            "started_at": time.time() - 60, "duration_s": 2.9, "source": "Tower", "text": "climb flight level three three zero delta two three four",
            "callsign": "delta two three four", "commands": [{"type": "climb", "value": "FL330"}], "low_confidence": False,
            "role": "pilot", "role_score": 0.91, "exchange": 7,
            "readback": {"status": "mismatch", "instruction": 6,
                         "differences": [{"item": "level", "expected": "FL350", "heard": "FL330", "kind": "changed"}]},
        }])
    server = ServerProcess(["-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--engine", "ct2", "--realtime",
                            "--source", f"Tower=file:{tower}", "--source", f"Approach=file:{approach}",
                            "--token", TOKEN])
    try:
        browser.get(f"{server.url}/?token={TOKEN}")
        _wait(lambda: len(_cards(browser, "Tower")) == 4 and len(_cards(browser, "Approach")) == 2, 90,
              "every transmission on the page: " + browser.find_element(By.ID, "columns").text)
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        records = {r["id"]: r for r in api.get("/api/transmissions", params={"limit": 50}).json()["items"]}
        assert len(records) == 6
        for frequency in ("Tower", "Approach"):
            cards = _cards(browser, frequency)
            started = [c.get_attribute("data-started") for c in cards]
            assert started == sorted(started, reverse=True)  # newest on top
            for c in cards:
                r = records[int(c.get_attribute("data-id"))]
                assert r["frequency"] == frequency
                shown = c.find_element(By.CSS_SELECTOR, ".tx-text").text
                assert shown == r["text"], (shown, r["text"])
                assert c.find_element(By.CSS_SELECTOR, ".tx-duration").text == f"{r['duration_s']:.1f} s"
                low = c.find_element(By.CSS_SELECTOR, ".tx-low").text
                assert bool(low) == r["low_confidence"] and all(reason in low for reason in r["reasons"])
                chips = [e.text for e in c.find_elements(By.CSS_SELECTOR, ".chip")]
                assert len(chips) == len(r["commands"])
                callsign = c.find_element(By.CSS_SELECTOR, ".tx-callsign")
                assert callsign.text.lower() == (r["callsign"] or "")
        words = " ".join(r["text"].lower() for r in records.values())
        assert "cleared to land" in words and "climb" in words
        # The readback mismatch is red, with what differs.
        mismatch = browser.find_element(By.CSS_SELECTOR, ".tx.mismatch")
        assert "FL350" in mismatch.find_element(By.CSS_SELECTOR, ".tx-differences").text
        assert mismatch.value_of_css_property("border-left-color") == "rgba(255, 92, 92, 1)"
        assert mismatch.find_element(By.CSS_SELECTOR, ".tx-role").text.lower() == "pilot"

        # Callsign filter: a click shows only that callsign's transmissions, another click all again.
        named = next(c for c in _cards(browser, "Tower") if c.get_attribute("data-callsign"))
        name = named.get_attribute("data-callsign")
        named.find_element(By.CSS_SELECTOR, ".tx-callsign").click()
        visible = [c for c in browser.find_elements(By.CSS_SELECTOR, ".columns .tx") if c.is_displayed()]
        assert visible and all(name in c.get_attribute("data-callsign") for c in visible)
        assert len(visible) < 6
        named.find_element(By.CSS_SELECTOR, ".tx-callsign").click()
        assert len([c for c in browser.find_elements(By.CSS_SELECTOR, ".columns .tx") if c.is_displayed()]) == 6

        # Play: the saved audio is fetched and played.
        first = _cards(browser, "Approach")[-1]
        first.find_element(By.CSS_SELECTOR, ".play").click()
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => done([r.status, r.headers.get('content-type')]));",
            records[int(first.get_attribute("data-id"))]["audio_url"])
        assert status == [200, "audio/wav"]
        _wait(lambda: "playing" in first.get_attribute("class") or not first.get_attribute("title"), 5, "playback")

        # Correct the oldest Approach transmission in place.
        target_id = int(first.get_attribute("data-id"))
        machine_text = records[target_id]["text"]
        first.find_element(By.CSS_SELECTOR, ".edit").click()
        box = first.find_element(By.CSS_SELECTOR, "textarea.tx-edit")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(CORRECTED, Keys.ENTER)
        _wait(lambda: first.find_element(By.CSS_SELECTOR, ".tx-text").text == CORRECTED, 15, "the correction shown")
        assert first.find_element(By.CSS_SELECTOR, ".tx-machine").text == f"heard: {machine_text}"
        with Catalogue(ws.db_path) as catalogue:
            row = catalogue.transcript(target_id)
        assert row["text_corrected"] == CORRECTED and row["text"] == machine_text

        # Search the catalogue for a word only the correction has, then export the corrections.
        query = browser.find_element(By.ID, "search-q")
        query.send_keys("speedbird heading")
        query.send_keys(Keys.ENTER)
        results = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#results-list .tx"), 15, "search results")
        assert [int(r.get_attribute("data-id")) for r in results] == [target_id]
        assert "1 transcript found" in browser.find_element(By.ID, "results-title").text
        assert results[0].find_element(By.CSS_SELECTOR, ".tx-frequency").text == "Approach"
        browser.find_element(By.ID, "export").click()
        exported = _wait(lambda: re.search(r"1 corrected transmissions written to (\S+)",
                                           browser.find_element(By.ID, "export-result").text), 15, "the export")
        manifest = Path(exported.group(1))
        assert manifest == ws.live_dir / "corrections.csv" and CORRECTED in manifest.read_text()

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shot = tmp_path / "page.png"
        browser.save_screenshot(str(shot))
        shutil.copyfile(shot, SCREENSHOT)
    finally:
        code = server.stop()
    assert code == 0, server.output
    assert "Stopped. 5 transmissions transcribed and stored (Tower: 3, Approach: 2)." in server.output
    assert "Traceback" not in server.output
    jsonl = (ws.live_dir / "transcripts.jsonl").read_text().splitlines()
    assert len(jsonl) == 5
