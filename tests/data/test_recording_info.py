"""The ATCO2 ``.info`` reader on the layouts real files use, and on messy ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from atc_whisper.data.importers.recording_info import (
    facts_from_name,
    parse_frequency_mhz,
    parse_recording_info,
    read_recording_info,
)
from atc_whisper.errors import DataError

ATCO2_INFO = """airport: LKPR (Prague Ruzyne)
channel: Tower
frequency: 134.560
waypoints nearby: BAVOX GOLOP RAPET
callsigns nearby:
CSA4AB : CSA Four Alfa Bravo
BLA131 : All Charter One Three One
BAW123 : Speedbird One Two Three
"""


def test_the_atco2_layout() -> None:
    info = parse_recording_info(ATCO2_INFO)
    assert (info.airport, info.airport_name, info.channel, info.frequency_mhz) == ("LKPR", "Prague Ruzyne", "Tower", 134.56)
    assert info.waypoints == ["BAVOX", "GOLOP", "RAPET"]
    assert [c["code"] for c in info.callsigns] == ["CSA4AB", "BLA131", "BAW123"]
    assert info.known_callsigns() == ["csa four alfa bravo", "all charter one three one", "speedbird one two three"]
    assert info.callsigns[1]["spoken"] == "All Charter One Three One"
    assert info.fields["channel"] == "Tower" and not info.warnings


def test_liberal_variants() -> None:
    text = (
        "\ufeff# exported from the radar\n"
        "Airport = EDDF Frankfurt Main\n"
        "CHANNEL: Director\n"
        "Frequency: 120,805 MHz\n"
        "Waypoints nearby: UNOKO, ROLIS;  EMPAX\n"
        "callsigns nearby: DLH4AB EWG7MX\n"   # bare codes on the header line
        "\n"                                  # a blank line does not end the block
        "BAW123 CFG4UL\n"                     # several bare codes on one line
        "RYR92A - Ryanair Nine Two Alfa\n"    # another separator
        "OKABC\t Oscar Kilo Alfa Bravo Charlie | Oscar Kilo Bravo Charlie\n"  # tab, two spoken forms
        "RYR92A : Ryanair Nine Two Alfa\n"    # a duplicate
        "??? : ...\n"
        "time: 2020-10-25 09:09:15\n"         # a header after the block ends it
        "something odd without a colon\n"
    )
    info = parse_recording_info(text)
    assert (info.airport, info.airport_name, info.channel, info.frequency_mhz) == ("EDDF", "Frankfurt Main", "Director", 120.805)
    assert info.waypoints == ["UNOKO", "ROLIS", "EMPAX"]
    known = info.known_callsigns()
    assert known[:2] == ["lufthansa four alfa bravo", "eurowings seven mike xray"]
    assert "speedbird one two three" in known and "ryanair nine two alfa" in known
    assert "oscar kilo alfa bravo charlie" in known and "oscar kilo bravo charlie" in known
    assert len(known) == len(set(known)) == 7
    assert info.fields["time"] == "2020-10-25 09:09:15"
    assert any("something odd" in w for w in info.warnings) and any("???" in w for w in info.warnings)


def test_facts_from_an_atco2_name_fill_gaps_only() -> None:
    name = "LKPR_RUZYNE_Tower_134_560MHz_20201025_090915"
    assert facts_from_name(name) == {"airport": "LKPR", "airport_name": "Ruzyne", "channel": "Tower",
                                     "frequency_mhz": 134.56}
    info = parse_recording_info("callsigns nearby:\nBAW123 : Speedbird One Two Three\n", name=name)
    assert (info.airport, info.channel, info.frequency_mhz) == ("LKPR", "Tower", 134.56)
    info = parse_recording_info("channel: Approach\n", name=name)
    assert info.channel == "Approach"  # the file wins over the name
    assert facts_from_name("my_recording") == {}


@pytest.mark.parametrize(("text", "mhz"), [("134.560", 134.56), ("134,56 MHz", 134.56), ("134560 kHz", 134.56),
                                           ("118.7", 118.7), ("none", None)])
def test_frequency_units(text: str, mhz: float | None) -> None:
    assert parse_frequency_mhz(text) == mhz


def test_reading_files(tmp_path: Path) -> None:
    latin = tmp_path / "LZIB_Tower.info"
    latin.write_bytes("airport: LZIB (Bratislava Štefánik)\ncallsigns nearby:\nTVS1234 : Skytravel One Two Three Four\n"
                      .encode().replace("Š".encode(), b"\x8a"))  # a stray non-UTF-8 byte
    info = read_recording_info(latin)
    assert info.airport == "LZIB" and info.known_callsigns() == ["skytravel one two three four"]
    with pytest.raises(DataError, match=r"nope\.info does not exist"):
        read_recording_info(tmp_path / "nope.info")
