"""The model card (README.md) saved with every fine-tuned model: data, settings, results."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_model_card(
    *,
    base_model: str,
    mode: str,
    data_counts: dict[str, Any],
    hyperparameters: dict[str, Any],
    metrics: dict[str, Any],
    english_only: bool,
) -> str:
    """Markdown model card.

    Args:
        base_model: The model training started from.
        mode: The training mode actually used (full, frozen_encoder, decoder_cached, lora).
        data_counts: Clip counts and hours per split.
        hyperparameters: The ``[train]`` settings of the run.
        metrics: Final metrics (losses, dev WER, steps, time).
        english_only: Whether the model is English-only.
    """
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: automatic-speech-recognition",
        f"base_model: {base_model}",
        "language: en",
        "tags: [whisper, atc, air-traffic-control, atc-whisper]",
        "---",
        "",
        "# ATC Whisper fine-tuned model",
        "",
        f"Fine-tuned from `{base_model}` on air-traffic-control radio speech with `atc-whisper train` "
        f"(mode `{mode}`). {'English-only' if english_only else 'Multilingual base, transcribing English'}; "
        "the encoder takes the standard 30 s window, so the folder works with `transformers.pipeline"
        "(\"automatic-speech-recognition\", model=...)`, `atc-whisper transcribe` and CTranslate2 export "
        "(`atc-whisper export --format ct2`).",
        "",
        "References follow the ATC convention: lower-case words, digits spelled one by one "
        "(\"heading two seven zero\"), ICAO alphabet.",
        "",
        "## Data",
        "",
        "| split | clips | hours | sources |",
        "|---|---|---|---|",
    ]
    for split, info in data_counts.items():
        sources = ", ".join(f"{name} {n}" for name, n in (info.get("sources") or {}).items())
        lines.append(f"| {split} | {info.get('clips', 0)} | {info.get('hours', 0.0):.3f} | {sources} |")
    mix = metrics.get("source_mix") or {}
    if mix:
        lines += ["", "Training mix (`train.source_weights`): share of each source in an epoch's batches.", "",
                  "| source | share | clips | draws per epoch |", "|---|---|---|---|"]
        lines += [f"| {key} | {100 * m.get('share', 0.0):.1f} % | {m.get('clips', 0)} | {m.get('per_epoch', 0)} |"
                  for key, m in mix.items()]
    lines += ["", "## Results", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.items() if not isinstance(v, dict)]
    lines += ["", "## Training settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in hyperparameters.items()]
    lines += [
        "",
        "The full resolved configuration is in `training_config.toml`.",
        "",
        "## Limits",
        "",
        "Trained largely on synthetic speech; synthetic-test WER predicts real-radio accuracy poorly. "
        "A tuned model can turn speech it cannot hear into fluent ATC phrases with invented callsigns: "
        "check the per-transcript confidence before trusting a callsign.",
        "",
    ]
    return "\n".join(lines)
