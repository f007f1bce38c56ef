"""Whisper base (multilingual, bundled offline) as a training start on CPU in decoder_cached mode.

A multilingual model must be taught and asked for English transcription the same way:
labels, the distillation teacher, the dev decoding, the saved generation config, the
CTranslate2 export and the engines all use <|en|><|transcribe|><|notimestamps|>.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from atc_whisper.audio.io import load_audio
from atc_whisper.config import Settings
from atc_whisper.evaluate.metrics import wer
from train_helpers import PHRASES, make_catalogue

SOT, EN, TRANSCRIBE, NO_TIMESTAMPS = 50258, 50259, 50359, 50363


@pytest.mark.slow  # converting the bundled base weights once per test session takes ~20 s
def test_labels_carry_the_multilingual_english_prefix(whisper_base) -> None:
    from atc_whisper.models.load import load_hf
    from atc_whisper.train.dataset import LabelEncoder
    from atc_whisper.transcribe.hf_engine import decoder_prefix

    model, processor = load_hf(whisper_base.hf_dir)
    assert not whisper_base.english_only and model.generation_config.is_multilingual
    ids = LabelEncoder(processor.tokenizer, model.generation_config)(PHRASES[0])
    # The model prepends <|startoftranscript|> itself; the labels hold the rest of the prompt.
    assert ids[:3] == [EN, TRANSCRIBE, NO_TIMESTAMPS] and ids[-1] == processor.tokenizer.eos_token_id
    assert processor.tokenizer.decode(ids[3:-1]) == " " + PHRASES[0]
    assert decoder_prefix(model) == [SOT, EN, TRANSCRIBE, NO_TIMESTAMPS]  # what inference forces


@pytest.mark.slow  # ~90 s on 2 idle cores: base's encoder cache, a teacher, 6 decoder steps, save, CT2 export
def test_base_trains_saves_and_transcribes_english(tmp_path, synth_clip, whisper_base) -> None:
    from transformers import WhisperForConditionalGeneration

    from atc_whisper.models.export import export_ct2
    from atc_whisper.train import train_model
    from atc_whisper.train.encoder_states import encoder_fingerprint, load_states
    from atc_whisper.transcribe.engines import CT2Engine, HFEngine
    from atc_whisper.transcribe.hf_engine import decoder_prefix

    ws = make_catalogue(tmp_path / "ws", synth_clip, n_train=5, n_dev=1, rehearsal=1)
    settings = Settings().replace(
        model={"name": str(whisper_base.hf_dir), "threads": 2},
        train={"mode": "decoder_cached", "max_steps": 6, "batch_size": 2, "learning_rate": 3e-4, "report_to": ["none"],
               "logging_steps": 1, "eval_steps": 6, "save_steps": 6, "eval_max_samples": 1, "distill_weight": 1.0},
        decode={"temperatures": [0.0]},
    )
    result = train_model(ws, settings, progress=False)
    assert result.mode == "decoder_cached" and result.steps == 6
    history = json.loads(sorted(ws.checkpoints_dir.glob("checkpoint-*/trainer_state.json"))[-1].read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses  # it learns
    assert any("distill_loss" in h for h in history)  # the multilingual teacher ran on the rehearsal clip
    assert "dev_wer" in result.metrics  # dev decoding of a multilingual model works

    base = WhisperForConditionalGeneration.from_pretrained(whisper_base.hf_dir)
    # under base's fingerprint, in the folder of whichever train.encoder_cache_backend "auto" chose
    cached = list((ws.cache_dir / "encoder").glob(f"{encoder_fingerprint(base)}*/*/*.npz"))
    states = load_states(cached[0])[0]
    assert len(cached) == 6 and states.shape[1] == 512 and states.shape[0] < 1500  # base: d_model 512, short passes

    tuned = WhisperForConditionalGeneration.from_pretrained(ws.model_dir)
    gen = tuned.generation_config
    assert gen.is_multilingual and gen.language in ("en", "<|en|>") and gen.task == "transcribe"
    assert not getattr(gen, "forced_decoder_ids", None) and decoder_prefix(tuned) == [SOT, EN, TRANSCRIBE, NO_TIMESTAMPS]
    summary = json.loads((ws.model_dir / "training_summary.json").read_text())
    assert summary["mode"] == "decoder_cached"
    assert "Multilingual base, transcribing English" in (ws.model_dir / "README.md").read_text()

    from atc_whisper.models.load import load_hf

    # Training clips of the two voices: the tuned model writes English in the reference convention
    # (numbers as spoken words) where pretrained base writes digits ("Delta 22DM altitude 3000 feet.").
    texts = PHRASES[1:3]
    audios = [load_audio(synth_clip(text, voice)) for text, voice in zip(texts, ["espeak:en-gb", "espeak:en-us"],
                                                                       strict=True)]
    tuned_model, processor = load_hf(ws.model_dir)
    hf_texts = [t.text for t in HFEngine(tuned_model, processor, settings.decode).transcribe_batch(audios)]
    assert all(t.strip() and t.isascii() for t in hf_texts), hf_texts  # English, not another language's script
    assert not any(ch.isdigit() for t in hf_texts for ch in t), hf_texts
    assert wer(texts, hf_texts) < 0.5, hf_texts

    ct2_dir = export_ct2(ws.model_dir, ws, out_dir=tmp_path / "ct2")
    engine = CT2Engine(ct2_dir, settings.decode, threads=2)
    assert engine.model.model.is_multilingual
    assert list(engine.tokenizer.sot_sequence) == [SOT, EN, TRANSCRIBE]
    ct2_texts = [t.text for t in engine.transcribe_batch(audios)]
    assert not any(ch.isdigit() for t in ct2_texts for ch in t), ct2_texts
    assert wer(texts, ct2_texts) < 0.5, (ct2_texts, hf_texts)  # int8 vs fp32: the same words, give or take
