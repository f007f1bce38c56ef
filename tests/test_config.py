"""Settings: defaults, files, overrides and the error messages of bad values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from atc_whisper.config import Settings, load_settings, parse_override, render_toml, settings_from_dict
from atc_whisper.errors import ConfigError


def test_first_run_defaults():
    s = Settings()
    assert s.model.name == "openai/whisper-tiny.en"
    # Sized for a first run that shows fine-tuning working (the prototype's 10/1/2: --preset prototype).
    assert (s.data.samples, s.data.test_fraction, s.train.epochs, s.train.batch_size) == (140, 0.15, 3.0, 8)
    # The first run's test split must hold at least 20 utterances (splits are by position: floor(n * fraction)).
    assert int(s.data.samples * s.data.test_fraction) >= 20
    assert s.model.device == "auto"


def test_rendered_toml_round_trips_and_is_commented():
    text = render_toml(Settings())
    assert text.count("# ") > 40  # every key has a help comment
    data = tomllib.loads(text)
    assert settings_from_dict(data) == Settings()


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("train.batch_size=0", "'train.batch_size' = 0"),
        ("train.batch_size=\"two\"", "'train.batch_size' = 'two'"),
        ("model.device=tpu", "one of auto, cpu, cuda"),
        ("data.dev_fraction=0.9", "<= 0.5"),
        ("decode.beam_size=2.5", "an integer"),
    ],
)
def test_bad_values_name_key_value_and_range(override, fragment):
    with pytest.raises(ConfigError) as info:
        load_settings(overrides=[override])
    assert fragment in str(info.value)
    assert override.split("=")[0] in str(info.value)


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"Did you mean .train\.epochs."):
        load_settings(overrides=["train.epoch=3"])


def test_relations_are_checked():
    with pytest.raises(ConfigError, match="snr_db_min"):
        load_settings(overrides=["channel.snr_db_min=30", "channel.snr_db_max=10"])


def test_precedence_workspace_then_file_then_set(tmp_path: Path):
    ws_cfg = tmp_path / "ws.toml"
    ws_cfg.write_text("[train]\nepochs = 3\nbatch_size = 4\n")
    user_cfg = tmp_path / "user.toml"
    user_cfg.write_text("[train]\nbatch_size = 8\n")
    s = load_settings(user_cfg, ws_cfg, ["train.learning_rate=3e-4"], {"data": {"samples": 7}})
    assert (s.train.epochs, s.train.batch_size, s.train.learning_rate, s.data.samples) == (3, 8, 3e-4, 7)


def test_unreadable_config_files(tmp_path: Path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\nepochs = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(binary)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_override_parsing():
    assert parse_override("data.engines=['piper']") == ("data", "engines", ["piper"])
    assert parse_override("model.name=openai/whisper-base") == ("model", "name", "openai/whisper-base")
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_override("epochs=3")


def test_keep_clean_is_read_as_clean_share(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert Settings().data.clean_share == 0.1
    with caplog.at_level("WARNING"):
        assert settings_from_dict({"data": {"keep_clean": True}}).data.clean_share == 1.0
    assert "data.clean_share" in caplog.text
    assert settings_from_dict({"data": {"keep_clean": False}}).data.clean_share == 0.0
    assert settings_from_dict({"data": {"keep_clean": True, "clean_share": 0.2}}).data.clean_share == 0.2
    # An old workspace file still loads.
    old = tmp_path / "atc_whisper.toml"
    old.write_text("[data]\nkeep_clean = false\n", encoding="utf-8")
    assert load_settings(workspace_config=old).data.clean_share == 0.0
    with pytest.raises(ConfigError, match=r"data\.keep_clean"):
        settings_from_dict({"data": {"keep_clean": "yes"}})
    assert "\nkeep_clean =" not in render_toml(Settings())


def test_radio_mix_defaults_match_the_generator() -> None:
    from atc_whisper.phraseology.generator import DEFAULT_SHORT_FRACTION, DEFAULT_US_FRACTION

    data = Settings().data
    assert (data.short_fraction, data.us_fraction) == (DEFAULT_SHORT_FRACTION, DEFAULT_US_FRACTION)
    with pytest.raises(ConfigError, match=r"channel\.codec_probability"):
        load_settings(overrides=["channel.codec_probability=1.5"])


def test_engine_mix_is_checked_and_normalised():
    from atc_whisper.config import TTS_ENGINES, engine_shares

    s = Settings()
    assert s.data.engines == list(TTS_ENGINES) and s.data.engine_weights == []
    assert engine_shares(s.data.engines, []) == pytest.approx(
        {"espeak": 0.4, "piper": 0.05, "kokoro": 0.25, "flite": 0.15, "festival": 0.15})
    assert engine_shares(["espeak", "kokoro"], [3, 1]) == {"espeak": 0.75, "kokoro": 0.25}
    assert load_settings(overrides=["data.engines=espeak"]).data.engines == ["espeak"]  # built-in shares follow
    with pytest.raises(ConfigError, match=r"2 weights for 3 engines \(espeak, kokoro, flite\).*one weight per engine"):
        load_settings(overrides=["data.engines=['espeak','kokoro','flite']", "data.engine_weights=[1,2]"])
    with pytest.raises(ConfigError, match="all zeros"):
        load_settings(overrides=["data.engines=['espeak']", "data.engine_weights=[0]"])
    with pytest.raises(ConfigError, match=r"unknown engine 'mbrola'.*espeak, piper, kokoro, flite, festival"):
        load_settings(overrides=["data.engines=['mbrola']"])
    with pytest.raises(ConfigError, match=r"'data\.workers' = -1"):
        load_settings(overrides=["data.workers=-1"])


def test_segmentation_settings_moved_from_live_still_load(tmp_path: Path, caplog):
    """The VAD settings are [segment] now (live and transcribe share them); a workspace written
    before keeps working, with a warning that names the new key."""
    old = tmp_path / "atc_whisper.toml"
    old.write_text('[live]\nvad = "energy"\nmin_silence_ms = 700\nqueue_size = 9\n', encoding="utf-8")
    with caplog.at_level("WARNING", logger="atc_whisper"):
        s = load_settings(workspace_config=old, overrides=["live.threshold=0.7"])
    assert (s.segment.vad, s.segment.min_silence_ms, s.segment.threshold, s.live.queue_size) == ("energy", 700, 0.7, 9)
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "'live.vad'" in warned and "'segment.vad'" in warned and "'live.threshold'" in warned
    # Both given: the new name wins.
    both = settings_from_dict({"live": {"vad": "energy"}, "segment": {"vad": "silero"}}, "both.toml")
    assert both.segment.vad == "silero"
    rendered = tomllib.loads(render_toml(Settings()))
    assert "vad" in rendered["segment"] and "vad" not in rendered["live"]
    with pytest.raises(ConfigError, match=r"segment\.vad"):
        settings_from_dict({"segment": {"vad": "webrtc"}})
