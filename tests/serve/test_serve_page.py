"""The live page in a real headless browser: Debian's Chromium driven through its ChromeDriver by
Selenium, against the real server listening to two espeak sessions replayed at real-time pace.

The run also writes the README's screenshot, docs/serve-page.png.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from atc_whisper.data.catalogue import Catalogue
from atc_whisper.live.simulate import synthetic_session
from serve_helpers import ServerProcess
from workspace_helpers import ct2_workspace

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "page-token-77"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "serve-page.png"
# Tower: two calls and a broadcast without a callsign (no exchange, no readback: the null fields).
TOWER = ["November one two three alpha bravo, cleared to land runway two seven.",
         "American one two three, contact tower one one eight decimal seven.",
         "All stations, wind two seven zero degrees one five knots."]
# Approach: two instructions, then their readbacks - the second reads FL350 back as FL340. tiny.en
# hears these espeak phrases over quiet static word for word (as in tests/live/test_live.py).
APPROACH = ["Delta seven eight nine, climb flight level two four zero.",
            "Delta three one two, climb flight level three five zero.",
            "Climbing flight level two four zero, Delta seven eight nine.",
            "Climbing flight level three four zero, Delta three one two."]
CORRECTED = "all stations wind two seven zero degrees one five knots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="needs Debian's chromium and chromium-driver (make test installs them)"),
]



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


def _shown(driver) -> set[int]:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return {int(c.get_attribute("data-id")) for c in driver.find_elements(By.CSS_SELECTOR, ".columns .tx")
            if c.is_displayed()}


def _events(url: str, wanted: int) -> list[tuple[str, dict]]:
    """The server's event stream from the start (the hub replays its history), until ``wanted``
    transmission events have come."""
    events: list[tuple[str, dict]] = []
    kind = ""
    with httpx.stream("GET", f"{url}/api/events", params={"after": 0}, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=30) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.split(":", 1)[1])))
                if sum(k == "transmission" for k, _ in events) == wanted:
                    break
    return events


def test_live_page_shows_corrects_searches_and_exports(tmp_path, tiny_en, ct2_cache, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    ws = ct2_workspace(tmp_path / "ws", ct2_cache)
    tower = synthetic_session(TOWER, gaps_s=1.5, lead_s=0.5, tail_s=1.0, seed=11).write_wav(tmp_path / "tower.wav")
    # The very session tests/live/test_live.py decodes with the live CLI.
    approach = synthetic_session(APPROACH, gaps_s=1.5, noise_dbfs=-60.0, seed=7).write_wav(tmp_path / "approach.wav")
    server = ServerProcess(["-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--engine", "ct2", "--realtime",
                            "--source", f"Tower=file:{tower}", "--source", f"Approach=file:{approach}",
                            "--token", TOKEN])
    try:
        browser.get(f"{server.url}/?token={TOKEN}")
        _wait(lambda: len(_cards(browser, "Tower")) == 3 and len(_cards(browser, "Approach")) == 4, 90,
              "every transmission on the page: " + browser.find_element(By.ID, "columns").text)
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        records = {r["id"]: r for r in api.get("/api/transmissions", params={"limit": 50}).json()["items"]}
        assert len(records) == 7
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
                role = c.find_element(By.CSS_SELECTOR, ".tx-role").text.lower()
                assert role == ("" if r["role"] == "unknown" else r["role"])
                exchange = c.find_element(By.CSS_SELECTOR, ".tx-exchange")
                assert exchange.text == ("" if r["exchange"] is None else f"ex {r['exchange']}")
                assert exchange.is_displayed() == (r["exchange"] is not None)
        words = " ".join(r["text"].lower() for r in records.values())
        assert "cleared to land" in words and "climb" in words
        sessions = {r["frequency"]: r["session"] for r in records.values()}
        assert len(set(sessions.values())) == 2 and all(sessions.values())  # one per frequency and run

        # The live conversation tracker's real readbacks: Approach's second one read FL350 back as FL340.
        approach_rows = sorted((r for r in records.values() if r["frequency"] == "Approach"), key=lambda r: r["index"])
        assert [r["role"] for r in approach_rows] == ["controller", "controller", "pilot", "pilot"], approach_rows
        ok, wrong = approach_rows[2], approach_rows[3]
        assert ok["readback"]["status"] == "ok" and ok["exchange"] == approach_rows[0]["exchange"]
        assert wrong["readback"]["status"] == "mismatch" and wrong["exchange"] == approach_rows[1]["exchange"]
        assert wrong["readback"]["instruction"] == approach_rows[1]["index"]
        difference = wrong["readback"]["differences"][0]
        assert (difference["item"], difference["expected"], difference["kind"]) == ("level", "FL350", "changed")
        # ... shown in red with what differed, labelled as the pilot's.
        mismatches = browser.find_elements(By.CSS_SELECTOR, ".columns .tx.mismatch")
        assert [int(m.get_attribute("data-id")) for m in mismatches] == [wrong["id"]]
        mismatch = mismatches[0]
        assert mismatch.find_element(By.CSS_SELECTOR, ".tx-differences").text == (
            f"level: expected FL350, heard {difference['heard']}")
        assert mismatch.find_element(By.CSS_SELECTOR, ".tx-readback").text == "readback mismatch"
        assert mismatch.value_of_css_property("border-left-color") == "rgba(255, 92, 92, 1)"
        assert mismatch.find_element(By.CSS_SELECTOR, ".tx-role").text.lower() == "pilot"
        good = next(c for c in _cards(browser, "Approach") if int(c.get_attribute("data-id")) == ok["id"])
        assert good.find_element(By.CSS_SELECTOR, ".tx-readback").text == "readback ok"
        assert "mismatch" not in good.get_attribute("class")

        # A transmission without a callsign: no exchange, no readback, nothing broken on the page.
        broadcast = next(r for r in records.values() if r["frequency"] == "Tower" and r["callsign"] is None)
        assert broadcast["exchange"] is None and broadcast["readback"] is None
        plain = next(c for c in _cards(browser, "Tower") if int(c.get_attribute("data-id")) == broadcast["id"])
        assert plain.find_element(By.CSS_SELECTOR, ".tx-readback").text == ""
        assert plain.find_element(By.CSS_SELECTOR, ".tx-differences").text == ""
        assert not plain.find_element(By.CSS_SELECTOR, ".tx-callsign").is_displayed()
        assert plain.get_attribute("data-readback") == "none" and plain.get_attribute("data-exchange") == ""

        # Role and readback filters of the columns (as the API's role and readback parameters).
        everything = set(records)
        role_filter, readback_filter = Select(browser.find_element(By.ID, "role-filter")), Select(
            browser.find_element(By.ID, "readback-filter"))
        role_filter.select_by_value("pilot")
        assert _shown(browser) == {r["id"] for r in records.values() if r["role"] == "pilot"} == {ok["id"], wrong["id"]}
        assert browser.find_element(By.CSS_SELECTOR, '.column[data-frequency="Approach"] .count').text == "2 of 4"
        role_filter.select_by_value("controller")
        assert _shown(browser) == {r["id"] for r in records.values() if r["role"] == "controller"}
        role_filter.select_by_value("")
        readback_filter.select_by_value("mismatch")
        assert _shown(browser) == {wrong["id"]}
        readback_filter.select_by_value("checked")
        assert _shown(browser) == {ok["id"], wrong["id"]}
        readback_filter.select_by_value("none")
        assert _shown(browser) == everything - {ok["id"], wrong["id"]}
        readback_filter.select_by_value("")
        assert _shown(browser) == everything

        # The exchange cue: a click shows the instruction and its readback only; ✕ shows all again.
        mismatch.find_element(By.CSS_SELECTOR, ".tx-exchange").click()
        assert _shown(browser) == {approach_rows[1]["id"], wrong["id"]}
        banner = browser.find_element(By.ID, "exchange-filter")
        assert banner.is_displayed() and f"exchange {wrong['exchange']} on Approach" in banner.text
        browser.find_element(By.ID, "exchange-clear").click()
        assert _shown(browser) == everything and not banner.is_displayed()

        # Callsign filter: a click shows only that callsign's transmissions, another click all again.
        named = next(c for c in _cards(browser, "Tower") if c.get_attribute("data-callsign"))
        name = named.get_attribute("data-callsign")
        named.find_element(By.CSS_SELECTOR, ".tx-callsign").click()
        visible = [c for c in browser.find_elements(By.CSS_SELECTOR, ".columns .tx") if c.is_displayed()]
        assert visible and all(name in c.get_attribute("data-callsign") for c in visible)
        assert len(visible) < 7
        named.find_element(By.CSS_SELECTOR, ".tx-callsign").click()
        assert _shown(browser) == everything

        # Play: the saved audio is fetched and played.
        first = _cards(browser, "Approach")[-1]
        first.find_element(By.CSS_SELECTOR, ".play").click()
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => done([r.status, r.headers.get('content-type')]));",
            records[int(first.get_attribute("data-id"))]["audio_url"])
        assert status == [200, "audio/wav"]
        _wait(lambda: "playing" in first.get_attribute("class") or not first.get_attribute("title"), 5, "playback")

        # Correct the broadcast (the one without a callsign) in place.
        target_id = broadcast["id"]
        machine_text = broadcast["text"]
        assert "degrees" not in machine_text.lower()  # so only the correction has it
        plain.find_element(By.CSS_SELECTOR, ".edit").click()
        box = plain.find_element(By.CSS_SELECTOR, "textarea.tx-edit")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(CORRECTED, Keys.ENTER)
        _wait(lambda: plain.find_element(By.CSS_SELECTOR, ".tx-text").text == CORRECTED, 15, "the correction shown")
        assert plain.find_element(By.CSS_SELECTOR, ".tx-machine").text == f"heard: {machine_text}"
        with Catalogue(ws.db_path) as catalogue:
            row = catalogue.transcript(target_id)
        assert row["text_corrected"] == CORRECTED and row["text"] == machine_text
        assert Path(row["audio_path"]).name.startswith(f"{row['session']}_")  # one id for records and audio

        # Search the catalogue for a word only the correction has.
        query = browser.find_element(By.ID, "search-q")
        query.send_keys("degrees")
        query.send_keys(Keys.ENTER)
        results = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#results-list .tx"), 15, "search results")
        assert [int(r.get_attribute("data-id")) for r in results] == [target_id]
        assert "1 transcript found" in browser.find_element(By.ID, "results-title").text
        assert results[0].find_element(By.CSS_SELECTOR, ".tx-frequency").text == "Tower"
        # ... and for readback mismatches: the result shows its role and what differed, in red.
        query.clear()
        Select(browser.find_element(By.ID, "search-readback")).select_by_value("mismatch")
        browser.find_element(By.CSS_SELECTOR, '#search-form button[type="submit"]').click()
        _wait(lambda: [int(r.get_attribute("data-id")) for r in
                       browser.find_elements(By.CSS_SELECTOR, "#results-list .tx")] == [wrong["id"]], 15,
              "the readback-mismatch search")
        found = browser.find_element(By.CSS_SELECTOR, "#results-list .tx")
        assert "mismatch" in found.get_attribute("class")
        assert found.find_element(By.CSS_SELECTOR, ".tx-role").text.lower() == "pilot"
        assert "expected FL350" in found.find_element(By.CSS_SELECTOR, ".tx-differences").text
        assert found.find_element(By.CSS_SELECTOR, ".tx-exchange").text == f"ex {wrong['exchange']}"
        Select(browser.find_element(By.ID, "search-role")).select_by_value("controller")
        browser.find_element(By.CSS_SELECTOR, '#search-form button[type="submit"]').click()
        _wait(lambda: "0 transcripts found" in browser.find_element(By.ID, "results-title").text, 15,
              "no controller readback")
        Select(browser.find_element(By.ID, "search-role")).select_by_value("")
        browser.find_element(By.CSS_SELECTOR, '#search-form button[type="submit"]').click()
        _wait(lambda: "1 transcript found" in browser.find_element(By.ID, "results-title").text, 15, "the mismatch again")

        browser.find_element(By.ID, "export").click()
        exported = _wait(lambda: re.search(r"1 corrected transmissions written to (\S+)",
                                           browser.find_element(By.ID, "export-result").text), 15, "the export")
        manifest = Path(exported.group(1))
        assert manifest == ws.live_dir / "corrections.csv" and CORRECTED in manifest.read_text()

        # The event stream carries the new fields, null where they do not apply.
        events = _events(server.url, 7)
        heard = {d["id"]: d for k, d in events if k == "transmission"}
        assert set(heard) == everything
        for r in heard.values():
            assert {"role", "role_score", "exchange", "readback", "session"} <= set(r)
        assert heard[target_id]["callsign"] is None and heard[target_id]["exchange"] is None
        assert heard[target_id]["readback"] is None
        assert heard[wrong["id"]]["readback"] == wrong["readback"]

        browser.set_window_size(1500, 1050)  # room for both columns under the search result
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shot = tmp_path / "page.png"
        browser.save_screenshot(str(shot))
        shutil.copyfile(shot, SCREENSHOT)
    finally:
        code = server.stop()
    assert code == 0, server.output
    assert "Stopped. 7 transmissions transcribed and stored (Tower: 3, Approach: 4)." in server.output
    assert "Traceback" not in server.output
    jsonl = (ws.live_dir / "transcripts.jsonl").read_text().splitlines()
    assert len(jsonl) == 7
