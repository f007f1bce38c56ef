"""Export to CTranslate2: faster-whisper runs the result; the cache follows the source; the CLI works."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.errors import ModelError
from atc_whisper.models.ct2_format import read_ct2_whisper
from atc_whisper.models.export import EXPORT_MARKER, export_ct2
from atc_whisper.models.resolve import offline_models, resolve_model

UTTERANCE = "lufthansa four five six, climb flight level one two zero, turn right heading zero niner zero"


@pytest.fixture(scope="module")
def tiny_en_int8(tiny_en, session_workspace) -> Path:
    return export_ct2(tiny_en.hf_dir, session_workspace, quantization="int8")


def test_faster_whisper_transcribes_with_the_export(tiny_en_int8, session_workspace, synth_clip):
    from faster_whisper import WhisperModel

    assert tiny_en_int8.parent == session_workspace.ct2_dir
    names = {p.name for p in tiny_en_int8.iterdir()}
    assert {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"} <= names
    assert json.loads((tiny_en_int8 / "preprocessor_config.json").read_text())["feature_size"] == 80
    model = WhisperModel(str(tiny_en_int8), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _info = model.transcribe(str(synth_clip(UTTERANCE)), beam_size=1, language="en", vad_filter=False)
    text = " ".join(s.text for s in segments).lower()
    assert "climb" in text and "heading" in text


def test_int8_export_reads_back_close_to_the_source(tiny_en, tiny_en_int8):
    from safetensors.numpy import load_file

    ckpt = read_ct2_whisper(tiny_en_int8)
    assert "int8" in ckpt.source_dtypes  # quantised weights, de-quantised by the reader
    source = load_file(str(tiny_en.hf_dir / "model.safetensors"))
    for ct2_name, hf_name in [("decoder/embeddings/weight", "model.decoder.embed_tokens.weight"),
                              ("encoder/layer_0/ffn/linear_0/weight", "model.encoder.layers.0.fc1.weight")]:
        restored, original = ckpt.weights[ct2_name], source[hf_name]
        # int8 per-row quantisation: error at most half a step, i.e. row max / 254.
        step = np.abs(original).max(axis=1, keepdims=True) / 127
        assert np.all(np.abs(restored - original) <= step / 2 + 1e-6)


def test_export_is_cached_and_rebuilt_when_the_source_changes(tiny_en, tmp_path):
    source = tmp_path / "tuned"
    shutil.copytree(tiny_en.hf_dir, source)
    first = export_ct2(source, quantization="int8")
    assert first == tmp_path / "tuned-ct2-int8"  # without a workspace: beside the source
    marker = first / EXPORT_MARKER
    key = json.loads(marker.read_text())["key"]
    started = time.perf_counter()
    assert export_ct2(source, quantization="int8") == first
    assert time.perf_counter() - started < 1.0  # cache hit, no conversion
    assert json.loads(marker.read_text())["key"] == key

    config = json.loads((source / "generation_config.json").read_text())
    config["max_length"] = 200  # as a re-trained model would change its files
    (source / "generation_config.json").write_text(json.dumps(config))
    export_ct2(source, quantization="int8")
    assert json.loads(marker.read_text())["key"] != key
    assert not list(tmp_path.glob(".tuned-ct2-int8*"))  # no temporary folders left behind


def test_ctranslate2_folder_resolves_through_conversion(tiny_en_int8, tmp_path, synth_clip):
    from atc_whisper.audio.io import load_audio
    from atc_whisper.models.load import load_hf
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(tmp_path / "ws")
    resolved = resolve_model(str(tiny_en_int8), ws, offline=True)
    assert resolved.source == "local-ct2" and resolved.english_only
    assert resolved.hf_dir.parent == ws.pretrained_dir
    model, processor = load_hf(resolved.hf_dir)
    features = processor(load_audio(synth_clip(UTTERANCE)), sampling_rate=16000, return_tensors="pt").input_features
    text = processor.batch_decode(model.generate(features, max_new_tokens=64), skip_special_tokens=True)[0].lower()
    assert "climb" in text and "heading" in text


def test_export_refuses_what_faster_whisper_could_not_run(tiny_en, tmp_path):
    with pytest.raises(ModelError, match="quantization 'int3'"):
        export_ct2(tiny_en.hf_dir, quantization="int3", out_dir=tmp_path / "x")
    with pytest.raises(ModelError, match="not a Hugging Face Whisper folder"):
        export_ct2(tmp_path, out_dir=tmp_path / "y")
    short = tmp_path / "short"
    short.mkdir()
    config = json.loads((tiny_en.hf_dir / "config.json").read_text())
    (short / "config.json").write_text(json.dumps({**config, "max_source_positions": 500}))
    for name in ("model.safetensors", "tokenizer.json"):
        (short / name).symlink_to(tiny_en.hf_dir / name)
    with pytest.raises(ModelError, match="30 s windows"):
        export_ct2(short, out_dir=tmp_path / "z")
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()


def test_export_cli_default_model_uses_the_cache(run_cli, tiny_en_int8, session_workspace):
    # No fine-tuned model in the workspace: MODEL defaults to model.name (tiny.en), whose
    # conversion and int8 export already exist, so the command only checks the caches.
    stamp = (tiny_en_int8 / "model.bin").stat().st_mtime_ns
    result = run_cli("export", "-w", str(session_workspace.root), "--offline")
    assert result.returncode == 0, result.stderr
    assert "openai/whisper-tiny.en" in result.stdout and str(tiny_en_int8) in result.stdout
    assert (tiny_en_int8 / "model.bin").stat().st_mtime_ns == stamp


def test_export_cli_unknown_model(run_cli, workspace):
    result = run_cli("export", "nosuchmodel", "-w", str(workspace.root), env={"HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    assert all(name in result.stderr for name in offline_models())
    assert not workspace.ct2_dir.exists()
