"""Both engines still decode the golden clips exactly as they did before the decoding loop was shared.

``tests/golden/engine_outputs.json`` was recorded (``tests/golden/record_engine_outputs.py``)
on the code as it stood before the two engines' own fallback loops were replaced by the one
engine-agnostic loop of ``transcribe/decoding.py`` (the CTranslate2 outputs again in float32 when
its int8 transcripts turned out to differ between CPUs, see ``golden_settings``). The clips are stored FLAC files (espeak-ng
speech; one buried in noise at -5 dB SNR so that it needs the temperature fallback, one that
makes Whisper loop), decoded alone, as one batch and with short and over-long callsign prompts.
Text, temperature and low-confidence reasons must be identical; the confidence numbers equal to
a tight tolerance.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
sys.path.insert(0, str(GOLDEN))
import record_engine_outputs as golden  # noqa: E402

EXPECTED = json.loads(golden.OUTPUTS.read_text(encoding="utf-8"))
FLOAT_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def outputs(tiny_en, session_workspace):
    from atc_whisper.transcribe import load_engine

    settings = golden.golden_settings()
    return {name: golden.run_engine(load_engine(tiny_en.hf_dir, settings, session_workspace, engine=name))
            for name in ("ct2", "hf")}


def test_golden_runs_exercise_the_fallback_and_the_prompt_budget(tiny_en):
    """The golden file covers what a refactor could break: fallbacks, loops, both prompt kinds."""
    from tokenizers import Tokenizer

    for engine in ("ct2", "hf"):
        runs = EXPECTED[engine]
        assert runs["single"]["noisy"]["reasons"] and runs["batch"]["noisy"]["temperature"] > 0
        # a loop cut after a fallback (CTranslate2 float32 escapes it alone and loops again in the batch)
        assert any("repetition" in runs[run]["loop"]["reasons"] and runs[run]["loop"]["temperature"] > 0
                   for run in ("single", "batch"))
        assert runs["single"]["atc"]["temperature"] == 0.0 and not runs["single"]["atc"]["reasons"]
    tokenizer = Tokenizer.from_file(str(tiny_en.hf_dir / "tokenizer.json"))
    # Longer than the half of the 448-token context that Whisper allows a prompt.
    assert len(tokenizer.encode(" " + golden.LONG_PROMPT, add_special_tokens=False).ids) > 448 // 2


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ct2", "hf"])
def test_engines_reproduce_the_golden_outputs(outputs, engine):
    got, expected = outputs[engine], EXPECTED[engine]
    assert got.keys() == expected.keys()
    for run, clips in expected.items():
        for clip, want in clips.items():
            have = got[run][clip]
            where = f"{engine} {run} {clip}"
            assert have["text"] == want["text"], where
            assert have["reasons"] == want["reasons"], where
            assert have["low_confidence"] == want["low_confidence"], where
            assert have["temperature"] == want["temperature"], where
            for key in ("avg_logprob", "no_speech_prob", "compression_ratio", "duration_s"):
                assert have[key] == pytest.approx(want[key], abs=FLOAT_TOLERANCE), f"{where} {key}"


def test_a_ctranslate2_folder_is_used_as_it_is(tmp_path):
    """``--engine ct2`` on the bundled tiny.en loads the package's own CTranslate2 folder: nothing is
    converted to Hugging Face format or exported back, and in float32 it decodes exactly what the
    Hugging Face engine decodes from the converted weights (the golden outputs)."""
    from atc_whisper.models.resolve import BUNDLED
    from atc_whisper.transcribe import load_engine
    from atc_whisper.workspace import Workspace

    workspace = Workspace.at(tmp_path / "ws")
    workspace.create()
    settings = golden.golden_settings().replace(decode={"compute_type": "float32"})
    engine = load_engine("tiny.en", settings, workspace, engine="ct2")
    package_dir = BUNDLED["openai/whisper-tiny.en"].sources()[0].parent
    assert engine.name == "ct2" and engine.model_dir == package_dir
    written = [p for folder in (workspace.pretrained_dir, workspace.ct2_dir) if folder.exists() for p in folder.iterdir()]
    assert written == []
    for clip in ("atc", "tower"):
        result = engine.transcribe(golden.load_clip(clip))
        want = EXPECTED["hf"]["single"][clip]
        assert result.text == want["text"], clip
        assert result.avg_logprob == pytest.approx(want["avg_logprob"], abs=5e-3), clip
