"""Cached encoder states: training reads exactly the encoder output that inference decodes.

Real tiny.en, real espeak-ng clips, the real engines: the states a training batch is built from
(the short pass up to the first trained layer, cached; the top layers and the silence completion
run per step) are compared with what the Hugging Face and CTranslate2 engines hand the decoder.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atc_whisper.audio.io import load_audio
from atc_whisper.config import DecodeSettings, Settings
from atc_whisper.errors import ConfigError
from atc_whisper.models import encoder_pass
from atc_whisper.train.dataset import (
    CachedEncoderDataset,
    LabelEncoder,
    NoSpeechTarget,
    TrainItem,
    WhisperCollator,
)
from atc_whisper.train.encoder_states import (
    EncoderCache,
    EncoderTop,
    TorchEncoder,
    encoder_fingerprint,
    load_states,
)
from atc_whisper.transcribe.window import ShortWindow, padding_level
from train_helpers import PHRASES

WINDOW = ShortWindow.of(DecodeSettings())  # the CPU default: 2 s pad, 10 s context
FP16 = 2e-3  # relative error of float16 storage


@pytest.fixture(scope="module")
def model_and_processor(tiny_en):
    from atc_whisper.models.load import load_hf

    model, processor = load_hf(tiny_en.hf_dir)
    return model.eval(), processor


@pytest.fixture(scope="module")
def items(synth_clip) -> list[TrainItem]:
    # Two lengths, so the clips are encoded over different frame counts.
    texts = [PHRASES[0], "Roger"]
    return [TrainItem(uid=str(i), audio_path=synth_clip(text), text=text, duration_s=1.0) for i, text in enumerate(texts)]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_cache_holds_each_clips_short_pass_and_its_padding_level(model_and_processor, items, tmp_path) -> None:
    model, processor = model_and_processor
    cache = EncoderCache(tmp_path, model, processor.feature_extractor, WINDOW, batch_size=2)
    files = cache.ensure(items)
    assert all(f.suffix == ".npz" and f.is_file() for f in files)
    stamps = [f.stat().st_mtime_ns for f in files]
    assert cache.ensure(items) == files and [f.stat().st_mtime_ns for f in files] == stamps  # computed once
    for item, path in zip(items, files, strict=True):
        audio = load_audio(item.audio_path)
        frames = WINDOW.encoder_frames(len(audio))
        features = processor.feature_extractor(audio, sampling_rate=16_000, return_tensors="pt").input_features[..., :frames]
        with torch.inference_mode():
            direct = encoder_pass.encode(model.get_encoder(), features)[0].numpy()
        states, level = load_states(path)
        assert states.shape == direct.shape == (frames // 2, 384) and frames < 1000  # the clip and 2 s, not 30 s
        assert _rel(states, direct) < FP16
        assert level == pytest.approx(padding_level(features.numpy()))


def test_a_batch_is_the_encoder_output_the_engines_decode(model_and_processor, items, tmp_path, tiny_en,
                                                          session_workspace) -> None:
    """What the decoder learns on is what the HF and CTranslate2 engines give it at inference."""
    from atc_whisper.models.export import export_ct2
    from atc_whisper.transcribe.engines import CT2Engine, HFEngine

    model, processor = model_and_processor
    cache = EncoderCache(tmp_path, model, processor.feature_extractor, WINDOW)
    labels = LabelEncoder(processor.tokenizer, model.generation_config)
    dataset = CachedEncoderDataset(items, cache.ensure(items), labels)
    batch = WhisperCollator()([dataset[0], dataset[1]])
    assert [tuple(s.shape) for s in batch["encoder_states"]] != [(1500, 384)] * 2
    top = EncoderTop(model.get_encoder(), cache.split, WINDOW)
    assert not top.trains
    with torch.inference_mode():
        hidden = top(batch["encoder_states"], batch["levels"].tolist())
    assert hidden.shape == (2, 500, 384)  # the 10 s context

    audios = [load_audio(item.audio_path) for item in items]
    decode = DecodeSettings(compute_type="float32", temperatures=[0.0])
    hf_states, _ = HFEngine(model, processor, decode).encode(audios, [])
    ct2 = CT2Engine(export_ct2(tiny_en.hf_dir, session_workspace, quantization="default"), decode, threads=2)
    _, ct2_states = ct2.encode(audios, [])
    for row in range(2):
        assert _rel(hidden[row].numpy(), hf_states[row].numpy()) < FP16
        assert _rel(hidden[row].numpy(), ct2_states[row]) < FP16
    with torch.inference_mode():  # and the decoder's loss is the same on either
        trained_on = model(encoder_outputs=(hidden,), labels=batch["labels"]).loss.item()
        decoded_on = model(encoder_outputs=(torch.stack(hf_states),), labels=batch["labels"]).loss.item()
    assert trained_on == pytest.approx(decoded_on, rel=1e-3)


def test_top_layers_learn_on_the_cached_states_below_them(model_and_processor, items, tmp_path) -> None:
    import copy

    model, processor = model_and_processor
    student = copy.deepcopy(model)
    split = 2
    cache = EncoderCache(tmp_path, student, processor.feature_extractor, WINDOW, encoder=TorchEncoder(student, layers=split))
    assert cache.split == split and cache.folder.name == f"{encoder_fingerprint(student)}-pad2-l2-torch-fp32"
    dataset = CachedEncoderDataset(items, cache.ensure(items), LabelEncoder(processor.tokenizer, model.generation_config))
    batch = WhisperCollator()([dataset[0], dataset[1]])
    whole = EncoderCache(tmp_path, student, processor.feature_extractor, WINDOW)
    whole_batch = WhisperCollator()([CachedEncoderDataset(items, whole.ensure(items), dataset.labels)[i] for i in (0, 1)])
    full_top = EncoderTop(student.get_encoder(), whole.split, WINDOW)
    top = EncoderTop(student.get_encoder(), split, WINDOW)
    assert top.trains
    with torch.no_grad():  # before any update, both paths give the same encoder output
        expected = full_top(whole_batch["encoder_states"], whole_batch["levels"].tolist())
    student.train()
    student.freeze_encoder()
    for layer in student.get_encoder().layers[split:]:
        layer.requires_grad_(True)
    hidden = top(batch["encoder_states"], batch["levels"].tolist())
    assert _rel(hidden.detach().numpy(), expected.numpy()) < 2 * FP16
    student(encoder_outputs=(hidden,), labels=batch["labels"]).loss.backward()
    encoder = student.get_encoder()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for layer in encoder.layers[split:] for p in layer.parameters())
    assert all(p.grad is None for layer in encoder.layers[:split] for p in layer.parameters())
    # A teacher reusing the student's silence states: the same lower layers, computed once.
    teacher_top = EncoderTop(model.get_encoder(), split, WINDOW, top.silence_lower)
    assert teacher_top.silence_lower is top.silence_lower and top.silence_lower


def test_cache_folders_keep_passes_layers_and_backends_apart(model_and_processor, tmp_path) -> None:
    model, processor = model_and_processor
    key = encoder_fingerprint(model)
    names = {
        EncoderCache(tmp_path, model, processor.feature_extractor, WINDOW).folder.name,
        EncoderCache(tmp_path, model, processor.feature_extractor, ShortWindow(30.0, 30.0)).folder.name,
        EncoderCache(tmp_path, model, processor.feature_extractor, WINDOW, encoder=TorchEncoder(model, "bf16")).folder.name,
        EncoderCache(tmp_path, model, processor.feature_extractor, WINDOW, encoder=TorchEncoder(model, layers=3)).folder.name,
    }
    assert names == {f"{key}-pad2-torch-fp32", f"{key}-w30-torch-fp32", f"{key}-pad2-torch-bf16", f"{key}-pad2-l3-torch-fp32"}


def test_encoder_layers_are_checked_before_training(tmp_path, synth_clip, tiny_en) -> None:
    from atc_whisper.train.setup import Plan, preflight
    from atc_whisper.train.trainer import _cache_encoder
    from atc_whisper.workspace import Workspace
    from train_helpers import make_catalogue

    ws = make_catalogue(tmp_path / "ws", synth_clip, n_train=2, n_dev=0)
    base = Settings().replace(model={"name": str(tiny_en.hf_dir)})
    assert preflight(ws, base.replace(train={"encoder_layers": 2})).encoder_layers == 2
    with pytest.raises(ConfigError, match=r"train.encoder_layers = 5, but the model's encoder has 4 layers; choose 0..4"):
        preflight(ws, base.replace(train={"encoder_layers": 5}))
    lora = preflight(ws, base.replace(train={"mode": "lora"}))  # the default 2 does not stop lora
    assert lora.encoder_layers == 0 and any("mode lora adapts the decoder only" in n for n in lora.notes)
    full = preflight(ws, base.replace(train={"encoder_layers": 1, "mode": "full"}))
    assert full.encoder_layers == 0 and any("applies to mode decoder_cached only" in n for n in full.notes)
    plan = Plan(model_name="m", hf_dir=tmp_path, english_only=True, mode="decoder_cached", device="cpu",
                precision="fp32", train_samples=[], dev_samples=[], output_dir=tmp_path, encoder_layers=1)
    pinned = Settings().replace(train={"encoder_cache_backend": "ct2-int8"})
    from atc_whisper.models.load import load_hf

    with pytest.raises(ConfigError, match="computes only the whole encoder's output"):
        _cache_encoder(plan, load_hf(tiny_en.hf_dir)[0], pinned, Workspace.at(tmp_path))


def test_static_clips_are_taught_as_no_speech(model_and_processor, items) -> None:
    from transformers.models.whisper.modeling_whisper import shift_tokens_right

    model, processor = model_and_processor
    labels = LabelEncoder(processor.tokenizer, model.generation_config)
    gen = model.generation_config
    assert labels("") == labels("   ") == [gen.no_timestamps_token_id, processor.tokenizer.eos_token_id]
    target = NoSpeechTarget.of(model)
    assert processor.tokenizer.convert_ids_to_tokens(target.token_id) in ("<|nocaptions|>", "<|nospeech|>")
    speech = {"input_features": torch.zeros(80, 3000), "labels": labels(PHRASES[0]), "no_speech": False}
    static = {"input_features": torch.zeros(80, 3000), "labels": labels(""), "no_speech": True}
    plain = WhisperCollator(no_speech=target)([speech, dict(speech)])
    assert "decoder_input_ids" not in plain  # no static clip: the model shifts the labels itself
    batch = WhisperCollator(no_speech=target)([speech, static])
    expected_inputs = shift_tokens_right(WhisperCollator()([speech, static])["labels"], target.pad_id, target.decoder_start_id)
    assert torch.equal(batch["decoder_input_ids"], expected_inputs)
    # the static row predicts <|nospeech|> where the no-speech probability is read, then end-of-text
    assert batch["labels"][1, :2].tolist() == [target.token_id, processor.tokenizer.eos_token_id]
    assert batch["decoder_input_ids"][1, :2].tolist() == [gen.decoder_start_token_id, gen.no_timestamps_token_id]
    assert batch["labels"][0].tolist() == plain["labels"][0].tolist()  # speech rows untouched
