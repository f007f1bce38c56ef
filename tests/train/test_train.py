"""Training: data pipeline units, and one real fine-tuning run of tiny.en shared by the checks.

The shared run goes through the real CLI (``atc-whisper --profile train``) on real espeak-ng
clips, with TensorBoard and W&B (offline) reporting; the tests then read what it left behind.
"""

from __future__ import annotations

import json
import pstats
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from atc_whisper.config import DecodeSettings
from atc_whisper.data.catalogue import Catalogue
from atc_whisper.train.callbacks import part_grad_norms, part_of, predictions_markdown
from atc_whisper.train.dataset import (
    IGNORE_INDEX,
    CachedEncoderDataset,
    LabelEncoder,
    LengthGroupedSampler,
    SpeechDataset,
    TrainItem,
    WhisperCollator,
)
from atc_whisper.train.encoder_states import EncoderCache, EncoderTop, encoder_fingerprint, load_states
from atc_whisper.transcribe.window import ShortWindow
from conftest import run_cli
from train_helpers import PHRASES, make_catalogue


@pytest.fixture(scope="module")
def model_and_processor(tiny_en):
    from atc_whisper.models.load import load_hf

    return load_hf(tiny_en.hf_dir)


@pytest.fixture(scope="module")
def items(synth_clip) -> list[TrainItem]:
    return [TrainItem(uid=str(i), audio_path=synth_clip(text), text=text, duration_s=1.0 + i)
            for i, text in enumerate(PHRASES[:2])]


# -- data pipeline -------------------------------------------------------------------------------


def test_labels_match_the_inference_prompt(model_and_processor) -> None:
    model, processor = model_and_processor
    encoder = LabelEncoder(processor.tokenizer, model.generation_config)
    ids = encoder("climb flight level three five zero")
    gen = model.generation_config
    # No decoder start token (the model prepends it); the English-only prompt's <|notimestamps|> first.
    assert gen.decoder_start_token_id not in ids
    assert ids[0] == gen.no_timestamps_token_id
    assert ids[-1] == processor.tokenizer.eos_token_id
    text = processor.tokenizer.decode(ids[1:-1])
    assert text == " climb flight level three five zero"  # leading space, as Whisper outputs it
    # the model's shifted decoder input is exactly the inference prompt followed by the text
    labels = torch.tensor([ids])
    from transformers.models.whisper.modeling_whisper import shift_tokens_right

    shifted = shift_tokens_right(labels, gen.pad_token_id, gen.decoder_start_token_id)
    assert shifted[0, :2].tolist() == [gen.decoder_start_token_id, gen.no_timestamps_token_id]


def test_collator_pads_labels_and_stacks_features(model_and_processor, items) -> None:
    model, processor = model_and_processor
    labels = LabelEncoder(processor.tokenizer, model.generation_config)
    dataset = SpeechDataset(items, processor.feature_extractor, labels)
    batch = WhisperCollator()([dataset[0], dataset[1]])
    assert batch["input_features"].shape == (2, 80, 3000)  # the full 30 s window, as at inference
    lengths = [len(labels(item.text)) for item in items[:2]]
    assert batch["labels"].shape[1] >= max(lengths) and batch["labels"].shape[1] % 8 == 0
    for row, n in enumerate(lengths):
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
        assert (batch["labels"][row, :n] != IGNORE_INDEX).all()


def test_distillation_loss_measures_drift_from_the_teacher_on_rehearsal_rows_only(model_and_processor, items) -> None:
    import copy

    from atc_whisper.train.trainer import distillation_loss

    model, processor = model_and_processor
    labels = LabelEncoder(processor.tokenizer, model.generation_config)
    dataset = SpeechDataset(items, processor.feature_extractor, labels)
    batch = WhisperCollator(rehearsal_mask=True)([dataset[0], dataset[1]])
    assert batch["rehearsal"].tolist() == [False, False]  # ATC clips are not rehearsal
    inputs = {"input_features": batch["input_features"], "labels": batch["labels"]}
    first = torch.tensor([True, False])
    student = copy.deepcopy(model)
    with torch.no_grad():
        same = distillation_loss(model, student(**inputs).logits, inputs, first).item()
    assert abs(same) < 1e-4  # a student that predicts what the teacher does has nothing to learn
    torch.manual_seed(0)
    with torch.no_grad():  # move the student's decoder away from the pretrained weights
        fc2 = student.model.decoder.layers[0].fc2.weight
        fc2.add_(0.5 * fc2.std() * torch.randn_like(fc2))
    moved = distillation_loss(model, student(**inputs).logits, inputs, first)
    assert moved.item() > 1e-3
    moved.backward()
    assert fc2.grad is not None and fc2.grad.abs().sum() > 0  # the loss pulls the student back
    assert all(p.grad is None for p in model.parameters())  # the teacher stays frozen
    # only the rehearsal row counts: the same as a batch of that clip alone (with its own padding)
    alone = WhisperCollator()([dataset[0]])
    with torch.no_grad():
        single = distillation_loss(model, student(**alone).logits, alone, torch.tensor([True])).item()
    assert single == pytest.approx(moved.item(), rel=1e-3)


WHOLE = ShortWindow(30.0, 30.0)  # the whole 30 s window, as on a GPU


def test_whole_window_cache_matches_the_encoder_and_feeds_the_decoder(model_and_processor, items, tmp_path) -> None:
    model, processor = model_and_processor
    cache = EncoderCache(tmp_path, model, processor.feature_extractor, WHOLE, batch_size=2)
    files = cache.ensure(items)
    assert all(f.is_file() for f in files) and len({f.parent.parent for f in files}) == 1
    features = SpeechDataset(items[:1], processor.feature_extractor, LabelEncoder(processor.tokenizer, model.generation_config))
    with torch.inference_mode():
        direct = model.model.encoder(features[0]["input_features"][None]).last_hidden_state[0].numpy()
    cached, _ = load_states(files[0])
    assert cached.shape == direct.shape == (1500, 384)
    assert np.abs(cached - direct).max() < 0.02 * np.abs(direct).max()  # float16 storage
    # the decoder's loss on cached outputs equals the full model's loss on the audio
    labels = LabelEncoder(processor.tokenizer, model.generation_config)
    batch_cached = WhisperCollator()([CachedEncoderDataset(items[:1], files[:1], labels)[0]])
    batch_full = WhisperCollator()([SpeechDataset(items[:1], processor.feature_extractor, labels)[0]])
    top = EncoderTop(model.get_encoder(), cache.split, WHOLE)
    with torch.inference_mode():
        hidden = top(batch_cached.pop("encoder_states"), batch_cached.pop("levels").tolist())
        loss_cached = model(encoder_outputs=(hidden,), **batch_cached).loss.item()
        loss_full = model(**batch_full).loss.item()
    assert loss_cached == pytest.approx(loss_full, rel=0.02)


@pytest.mark.parametrize(("compute_type", "tolerance"), [("int8", 0.08), ("float32", 0.005)])
def test_ct2_encoder_cache_is_close_to_the_torch_one(model_and_processor, items, tmp_path, tiny_en, session_workspace,
                                                     compute_type, tolerance) -> None:
    from atc_whisper.models.export import export_ct2
    from atc_whisper.train.encoder_states import CT2Encoder

    model, processor = model_and_processor
    window = ShortWindow.of(DecodeSettings())
    ct2_dir = export_ct2(tiny_en.hf_dir, session_workspace, quantization="int8" if compute_type == "int8" else "default")
    fast = EncoderCache(tmp_path, model, processor.feature_extractor, window,
                        encoder=CT2Encoder(ct2_dir, compute_type, threads=2))
    torch_cache = EncoderCache(tmp_path, model, processor.feature_extractor, window)
    assert fast.folder.name == f"{encoder_fingerprint(model)}-pad2-ct2-{compute_type}"  # its own cache
    a = [load_states(f) for f in fast.ensure(items)]
    b = [load_states(f) for f in torch_cache.ensure(items)]
    for (x, level_x), (y, level_y) in zip(a, b, strict=True):
        assert x.shape == y.shape and x.shape[0] < 1500  # the short pass
        assert np.linalg.norm(x - y) / np.linalg.norm(y) < tolerance and level_x == level_y
    # What the decoder sees from either cache gives nearly the same loss.
    labels = LabelEncoder(processor.tokenizer, model.generation_config)
    top = EncoderTop(model.get_encoder(), torch_cache.split, window)
    losses = []
    for cache in (fast, torch_cache):
        batch = WhisperCollator()([CachedEncoderDataset(items[:1], [cache.path_for(items[0])], labels)[0]])
        with torch.inference_mode():
            hidden = top(batch.pop("encoder_states"), batch.pop("levels").tolist())
            losses.append(model(encoder_outputs=(hidden,), **batch).loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=5 * tolerance)


def test_bf16_encoder_cache_is_within_a_percent_or_two(model_and_processor, items, tmp_path) -> None:
    from atc_whisper.train.encoder_states import TorchEncoder

    model, processor = model_and_processor
    window = ShortWindow.of(DecodeSettings())
    exact = EncoderCache(tmp_path, model, processor.feature_extractor, window)
    fast = EncoderCache(tmp_path, model, processor.feature_extractor, window, encoder=TorchEncoder(model, "bf16"))
    assert fast.folder.name == exact.folder.name.replace("-torch-fp32", "-torch-bf16")
    for a, b in zip(fast.ensure(items), exact.ensure(items), strict=True):
        x, y = load_states(a)[0], load_states(b)[0]
        assert 1e-4 < np.linalg.norm(x - y) / np.linalg.norm(y) < 0.03  # bfloat16 products: close, not equal


def test_torch_encoder_refuses_other_precisions(model_and_processor) -> None:
    from atc_whisper.errors import ConfigError
    from atc_whisper.train.encoder_states import TorchEncoder

    with pytest.raises(ConfigError, match=r"fp32 or bf16, not 'int8'; set train\.encoder_cache_backend"):
        TorchEncoder(model_and_processor[0], "int8")


def test_auto_cache_backend_follows_the_cpu(model_and_processor, tmp_path) -> None:
    from atc_whisper.config import Settings
    from atc_whisper.train.encoder_states import TorchEncoder, cpu_has_native_bf16
    from atc_whisper.train.setup import Plan
    from atc_whisper.train.trainer import _cache_encoder
    from atc_whisper.workspace import Workspace

    model, _ = model_and_processor
    plan = Plan(model_name="m", hf_dir=tmp_path, english_only=True, mode="decoder_cached", device="cpu",
                precision="fp32", train_samples=[], dev_samples=[], output_dir=tmp_path)
    encoder = _cache_encoder(plan, model, Settings(), Workspace.at(tmp_path))
    assert isinstance(encoder, TorchEncoder)
    assert encoder.precision == ("bf16" if cpu_has_native_bf16() else "fp32")
    pinned = Settings().replace(train={"encoder_cache_backend": "torch-fp32"})
    assert _cache_encoder(plan, model, pinned, Workspace.at(tmp_path)).precision == "fp32"


def test_length_grouped_sampler_is_a_seeded_permutation() -> None:
    lengths = [float(x) for x in np.random.default_rng(0).uniform(1, 10, 40)]
    sampler = LengthGroupedSampler(lengths, batch_size=4, seed=7, group_batches=5)
    first = list(sampler)
    assert sorted(first) == list(range(40))
    assert list(LengthGroupedSampler(lengths, batch_size=4, seed=7, group_batches=5)) == first  # same order on resume
    sampler.set_epoch(1)
    assert list(sampler) != first
    # neighbours share a length range: batches are tighter than random ones
    spread = np.mean([np.ptp([lengths[i] for i in first[k:k + 4]]) for k in range(0, 40, 4)])
    assert spread < np.ptp(lengths) / 2


def test_part_norms_cover_every_trainable_parameter(model_and_processor) -> None:
    model, _ = model_and_processor
    assert part_of("model.encoder.layers.0.fc1.weight") == "encoder"
    assert part_of("model.decoder.embed_tokens.weight") == "embeddings"
    assert part_of("base_model.model.model.decoder.layers.1.self_attn.q_proj.lora_A.default.weight") == "decoder"
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    norms = part_grad_norms(model)
    model.zero_grad(set_to_none=True)
    unique = {id(p): p for p in model.parameters()}.values()
    total = sum(p.numel() for p in unique)
    assert set(norms) == {"encoder", "decoder", "embeddings"}
    assert sum(v * v for v in norms.values()) == pytest.approx(total, rel=1e-6)  # tied weights counted once
    assert "| 1 | a \\| b | c | 50% |" in predictions_markdown([("a | b", "c", 0.5)])


# -- one real run through the CLI, shared ----------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_clip, tiny_en):
    ws = make_catalogue(tmp_path_factory.mktemp("train") / "ws", synth_clip)
    result = run_cli(
        "--profile", "train", "-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--max-steps", "4",
        "--batch-size", "3", "--lr", "1e-4", "--no-progress",
        "--set", "train.logging_steps=1", "--set", "train.eval_steps=2", "--set", "train.perf_interval_s=0.1",
        "--set", 'train.report_to=["tensorboard","wandb"]', "--set", "model.threads=2",
        "--set", "train.base_blend=0.1", "--set", "train.base_blend_embeddings=0.7",
        "--set", "train.freeze_embeddings=false",  # this run also checks the embeddings' norm and blend
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return ws, result


@pytest.mark.slow
def test_train_cli_summary_and_profile(trained) -> None:
    ws, result = trained
    assert "Training finished: 4 steps" in result.stdout
    assert f"tensorboard --logdir {ws.model_dir / 'logs'}" in result.stdout
    assert "dev WER" in result.stdout
    # one concise console line per logging step
    assert sum(line.startswith("step ") for line in result.stderr.splitlines()) == 4
    stats = pstats.Stats(str(ws.profile_path))
    assert any("train_model" in func[2] for func in stats.stats)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_loss_decreases_on_real_data(trained) -> None:
    ws, _ = trained
    summary = json.loads((ws.model_dir / "training_summary.json").read_text())
    state = sorted(ws.checkpoints_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    history = json.loads((state / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert summary["steps"] == 4 and summary["mode"] == "decoder_cached"
    blend = summary["base_blend"]  # the pretrained weights blended back on save, as asked
    assert (blend["share"], blend["embedding_share"]) == (0.1, 0.7)
    assert blend["embeddings"] == 1 and blend["other"] > 0
    assert 0.0 <= summary["metrics"]["dev_wer"] <= 1.5


@pytest.mark.slow
def test_tensorboard_has_loss_lr_grad_norms_perf_and_predictions(trained) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ws, _ = trained
    (run_dir,) = [p for p in (ws.model_dir / "logs").iterdir() if p.is_dir()]
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    for tag in ("train/loss", "train/learning_rate", "train/grad_norm", "train/grad_norm/decoder",
                "train/grad_norm/embeddings", "eval/loss", "eval/wer", "perf/samples_per_s", "perf/cpu_percent",
                "perf/rss_mb", "perf/system_memory_percent", "perf/elapsed_s"):
        assert tag in scalars, tag
    # decoder_cached tunes the top train.encoder_layers (default 2) encoder layers: they get a gradient
    assert all(e.value > 0 for e in events.Scalars("train/grad_norm/encoder"))
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    text_events = events.Tensors("dev/predictions/text_summary")
    assert len(text_events) == 2  # one table per evaluation
    table = text_events[-1].tensor_proto.string_val[0].decode()
    assert "| reference | hypothesis |" in table and "delta eight climb flight level two four zero" in table


@pytest.mark.slow
def test_saved_model_loads_in_pipeline_and_exports_to_ct2(trained, synth_clip, tmp_path) -> None:
    from transformers import pipeline

    ws, _ = trained
    for name in ("model.safetensors", "config.json", "generation_config.json", "preprocessor_config.json",
                 "tokenizer.json", "training_config.toml", "README.md"):
        assert (ws.model_dir / name).is_file(), name
    asr = pipeline("automatic-speech-recognition", model=str(ws.model_dir))
    text = asr(str(synth_clip(PHRASES[0])))["text"].lower()
    assert "speedbird" in text or "climb" in text
    saved = tomllib.loads((ws.model_dir / "training_config.toml").read_text())
    assert saved["train"]["max_steps"] == 4 and saved["train"]["learning_rate"] == pytest.approx(1e-4)
    card = (ws.model_dir / "README.md").read_text()
    assert "| train | 6 |" in card and "dev_wer" in card
    export = pytest.importorskip("atc_whisper.models.export")
    ct2_dir = export.export_ct2(ws.model_dir, ws, out_dir=tmp_path / "ct2")
    from faster_whisper import WhisperModel

    segments, _ = WhisperModel(str(ct2_dir), device="cpu", compute_type="int8").transcribe(str(synth_clip(PHRASES[0])))
    assert "climb" in " ".join(s.text for s in segments).lower()


@pytest.mark.slow
def test_run_recorded_and_wandb_offline(trained) -> None:
    ws, _ = trained
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        runs = catalogue.runs("train")
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    assert Path(runs[0]["model_path"]) == ws.model_dir
    metrics = runs[0]["metrics"] if isinstance(runs[0]["metrics"], dict) else json.loads(runs[0]["metrics"])
    assert metrics["steps"] == 4 and "dev_wer" in metrics
    offline_runs = list((ws.model_dir / "wandb").glob("**/offline-run-*"))
    assert offline_runs, "no W&B offline run folder"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["lora", "full"])
def test_other_modes_save_a_plain_whisper_model(mode, tmp_path, synth_clip, tiny_en) -> None:
    from transformers import WhisperForConditionalGeneration

    from atc_whisper.config import Settings
    from atc_whisper.train import train_model

    ws = make_catalogue(tmp_path / "ws", synth_clip, n_train=4, n_dev=1)
    settings = Settings().replace(
        model={"name": str(tiny_en.hf_dir), "threads": 2},
        train={"mode": mode, "max_steps": 2, "batch_size": 1 if mode == "full" else 2, "learning_rate": 1e-4,
               "report_to": ["none"], "logging_steps": 1},
    )
    result = train_model(ws, settings, progress=False)
    assert result.mode == mode and result.steps == 2
    saved = WhisperForConditionalGeneration.from_pretrained(ws.model_dir)  # no adapters left: a plain model
    assert not any("lora" in name for name, _ in saved.named_parameters())
    base = WhisperForConditionalGeneration.from_pretrained(tiny_en.hf_dir)
    changed = {n.split(".")[1] for n, p in saved.named_parameters()
               if not torch.equal(p, dict(base.named_parameters())[n])}
    # lora only touches the decoder; full fine-tuning also moves the encoder
    assert "decoder" in changed and (("encoder" in changed) == (mode == "full"))
    assert not any(ws.cache_dir.glob("encoder/*/*/*.npz")) == (mode == "full")  # only cached modes cache


def _short_pass(model, processor, clip):
    """``[1, context, d]`` encoder output of one clip the way inference reads it: the short pass
    completed with silence (what training on cached states learns from too)."""
    from atc_whisper.config import Settings
    from atc_whisper.transcribe.hf_engine import HFEngine

    (state,), _ = HFEngine(model, processor, Settings().decode).encode([clip], [])
    return state[None]


@pytest.mark.slow
def test_distillation_keeps_rehearsal_predictions_closer_to_the_pretrained_model(tmp_path, synth_clip, tiny_en) -> None:
    """With the default top encoder layers tuned too, measured as inference reads the clips."""
    from transformers import WhisperForConditionalGeneration

    from atc_whisper.audio.io import load_audio
    from atc_whisper.config import Settings
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.models.load import load_hf
    from atc_whisper.train import train_model
    from atc_whisper.train.dataset import items_from_samples
    from atc_whisper.train.trainer import distillation_loss

    ws = make_catalogue(tmp_path / "ws", synth_clip, n_train=6, n_dev=1, rehearsal=3)
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        train_items = items_from_samples(catalogue.samples(split="train"))
    assert sum(item.rehearsal for item in train_items) == 3  # phase "everyday" marks them
    base, processor = load_hf(tiny_en.hf_dir)
    rehearsal = [item for item in train_items if item.rehearsal]
    labels = LabelEncoder(processor.tokenizer, base.generation_config)
    batch = WhisperCollator()([SpeechDataset(rehearsal, processor.feature_extractor, labels)[i] for i in range(3)])
    clips = [load_audio(item.audio_path) for item in rehearsal]
    one = torch.ones(1, dtype=torch.bool)
    teacher = [_short_pass(base, processor, clip) for clip in clips]
    from transformers.models.whisper.modeling_whisper import shift_tokens_right

    config = base.config
    decoder_ids = shift_tokens_right(batch["labels"], config.pad_token_id, config.decoder_start_token_id)

    drift: dict[float, float] = {}
    for weight in (0.0, 5.0):
        settings = Settings().replace(
            model={"name": str(tiny_en.hf_dir), "threads": 2},
            train={"max_steps": 6, "batch_size": 3, "learning_rate": 1e-3, "report_to": ["none"],
                   "logging_steps": 1, "distill_weight": weight, "dev_evaluation": False},
        )
        assert settings.train.encoder_layers > 0
        train_model(ws, settings, progress=False)
        state = sorted(ws.checkpoints_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
        history = json.loads((state / "trainer_state.json").read_text())["log_history"]
        logged = [h["distill_loss"] for h in history if "distill_loss" in h]
        assert bool(logged) == (weight > 0)  # logged (to TensorBoard too) only when it is on
        tuned = WhisperForConditionalGeneration.from_pretrained(ws.model_dir).eval()
        losses = []
        for i, clip in enumerate(clips):
            with torch.no_grad():
                logits = tuned(encoder_outputs=(_short_pass(tuned, processor, clip),),
                               decoder_input_ids=decoder_ids[i : i + 1]).logits
            row = {"labels": batch["labels"][i : i + 1]}
            losses.append(distillation_loss(base, logits, row, one, {"encoder_outputs": (teacher[i],)}).item())
        drift[weight] = sum(losses) / len(losses)
    # the same seed and data: distillation keeps everyday English nearer to what the base model predicts
    assert drift[5.0] < 0.7 * drift[0.0], drift


@pytest.mark.slow
def test_freeze_embeddings_keeps_the_tied_embeddings_and_trains_the_layers(tmp_path, synth_clip, tiny_en) -> None:
    from transformers import WhisperForConditionalGeneration

    from atc_whisper.config import Settings
    from atc_whisper.train import train_model

    ws = make_catalogue(tmp_path / "ws", synth_clip, n_train=4, n_dev=1)
    settings = Settings().replace(
        model={"name": str(tiny_en.hf_dir), "threads": 2},
        train={"max_steps": 2, "batch_size": 2, "learning_rate": 1e-3, "report_to": ["none"], "logging_steps": 1,
               "freeze_embeddings": True, "dev_evaluation": False},
    )
    train_model(ws, settings, progress=False)
    saved = WhisperForConditionalGeneration.from_pretrained(ws.model_dir)
    base = WhisperForConditionalGeneration.from_pretrained(tiny_en.hf_dir)
    assert torch.equal(saved.model.decoder.embed_tokens.weight, base.model.decoder.embed_tokens.weight)
    assert saved.proj_out.weight.data_ptr() == saved.model.decoder.embed_tokens.weight.data_ptr()  # still tied
    assert not torch.equal(saved.model.decoder.layers[0].fc1.weight, base.model.decoder.layers[0].fc1.weight)
    assert not torch.equal(saved.model.decoder.embed_positions.weight, base.model.decoder.embed_positions.weight)


def test_dev_evaluation_switch_controls_evaluation_and_best_model(tmp_path) -> None:
    from atc_whisper.config import Settings
    from atc_whisper.train.setup import Plan, training_arguments

    plan = Plan(model_name="m", hf_dir=tmp_path, english_only=True, mode="decoder_cached", device="cpu",
                precision="fp32", train_samples=[object()], dev_samples=[object()], output_dir=tmp_path / "out")
    on = training_arguments(Settings(), plan, progress=False, run_name="on")
    assert on.eval_strategy.value == "epoch" and on.load_best_model_at_end and on.metric_for_best_model == "wer"
    off = training_arguments(Settings().replace(train={"dev_evaluation": False}), plan, progress=False, run_name="off")
    assert off.eval_strategy.value == "no" and not off.load_best_model_at_end


@pytest.mark.slow
def test_top_encoder_layers_learn_and_static_becomes_no_speech(tmp_path, synth_clip, tiny_en) -> None:
    """train.encoder_layers = 2 moves only the top two encoder layers (and the decoder); static clips
    (data.static_fraction) teach the no-speech token, which the engines then report over static."""
    from transformers import WhisperForConditionalGeneration

    from atc_whisper.audio.channel import RadioChannel
    from atc_whisper.audio.io import load_audio, write_wav
    from atc_whisper.config import Settings
    from atc_whisper.data.catalogue import Sample
    from atc_whisper.data.static import STATIC_PHASE
    from atc_whisper.fsutil import sha256_file
    from atc_whisper.models.load import load_hf
    from atc_whisper.train import train_model
    from atc_whisper.transcribe.engines import HFEngine

    ws = make_catalogue(tmp_path / "ws", synth_clip, n_train=4, n_dev=1)
    channel = RadioChannel(Settings().channel)
    statics = []
    for k in range(6):
        audio, params = channel.static(2.0, np.random.default_rng(k))
        path = write_wav(ws.augmented_dir / f"static{k}.wav", audio)
        statics.append(Sample(uid=f"s{k}", audio_path=path, sha256=sha256_file(path), duration_s=2.0, text_raw="",
                              text_norm="", split="train" if k < 4 else "test", source="synthetic", augmented=True,
                              phase=STATIC_PHASE, group_id=f"s{k}", params={"channel": params}))
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        catalogue.add_samples(statics)
    settings = Settings().replace(
        model={"name": str(tiny_en.hf_dir), "threads": 2},
        train={"encoder_layers": 2, "max_steps": 12, "batch_size": 4, "learning_rate": 3e-4, "report_to": ["none"],
               "logging_steps": 1, "dev_evaluation": False},
        decode={"temperatures": [0.0]},
    )
    result = train_model(ws, settings, progress=False)
    assert result.mode == "decoder_cached" and result.steps == 12
    tuned = WhisperForConditionalGeneration.from_pretrained(ws.model_dir)
    base = WhisperForConditionalGeneration.from_pretrained(tiny_en.hf_dir)
    moved = {name for name, p in tuned.model.encoder.named_parameters()
             if not torch.equal(p, dict(base.model.encoder.named_parameters())[name])}
    assert moved and all(name.startswith(("layers.2.", "layers.3.", "layer_norm.")) for name in moved), moved
    assert any(name.startswith("layers.2.") for name in moved) and any(name.startswith("layers.3.") for name in moved)

    # Static it never trained on (the held-out two) now reads as no speech; speech still does not.
    held_out = [load_audio(s.audio_path) for s in statics[4:]]
    speech = [load_audio(synth_clip(PHRASES[0]))]
    tuned_model, processor = load_hf(ws.model_dir)
    base_model, _ = load_hf(tiny_en.hf_dir)
    after = HFEngine(tuned_model, processor, settings.decode).transcribe_batch(held_out + speech)
    before = HFEngine(base_model, processor, settings.decode).transcribe_batch(held_out + speech)
    for old, new in zip(before[:2], after[:2], strict=True):
        assert new.no_speech_prob > max(0.6, old.no_speech_prob), (old.no_speech_prob, new.no_speech_prob)
        assert new.text == ""
    assert after[2].no_speech_prob < 0.3 and "climb" in after[2].text.lower()
