"""PNG plots of an evaluation: what fine-tuning bought, where, and what confidence is worth.

Why this module exists: a before/after bar chart says more to an ATC person than a table.
Four figures go beside the model in ``models/atc_whisper/``:

* ``evaluation_summary.png``: WER, CER, callsign and command accuracy per model;
* ``evaluation_wer_by_snr.png``: WER per SNR bucket (radio noise level) per model;
* ``evaluation_wer_by_source.png``: WER per data source per model;
* ``evaluation_coverage.png``: WER and callsign accuracy of the most confident utterances
  against the share kept, the curve to pick a confidence threshold from.

matplotlib runs on the non-interactive Agg backend (no display needed); files are atomic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import Settings
from ..fsutil import atomic_path
from .evaluate import EvaluationResult

SUMMARY_PNG = "evaluation_summary.png"
SNR_PNG = "evaluation_wer_by_snr.png"
SOURCE_PNG = "evaluation_wer_by_source.png"
COVERAGE_PNG = "evaluation_coverage.png"

_COLOURS = {"base": "#9e9e9e", "fine_tuned": "#1f77b4"}
_LABELS = {"base": "base", "fine_tuned": "fine-tuned"}


def _pct(value: Any) -> float:
    return 100.0 * value if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def _grouped_bars(ax: Any, categories: Sequence[str], series: dict[str, list[float]], ylabel: str) -> None:
    n = max(len(series), 1)
    width = 0.8 / n
    for k, (label, values) in enumerate(series.items()):
        xs = [c + (k - (n - 1) / 2) * width for c in range(len(categories))]
        bars = ax.bar(xs, [0.0 if math.isnan(v) else v for v in values], width,
                      label=_LABELS.get(label, label), color=_COLOURS.get(label))
        for bar, value in zip(bars, values, strict=True):
            text = "n/a" if math.isnan(value) else f"{value:.1f}"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                        fontsize=8, xytext=(0, 2), textcoords="offset points")
    longest = max((len(line) for c in categories for line in c.splitlines()), default=0)
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, rotation=20 if longest > 16 else 0, ha="right" if longest > 16 else "center")
    top = max((v for values in series.values() for v in values if not math.isnan(v)), default=0.0)
    ax.set_ylim(0, max(top * 1.22, 1.0))  # headroom for the value labels and the legend
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def plot_summary(path: Path, result: EvaluationResult) -> Path:
    """Before/after bars: WER, CER, callsign accuracy and command accuracy per model (percent)."""
    plt = _pyplot()
    metrics = [("wer", "WER"), ("cer", "CER"), ("callsign_acc", "callsign acc."), ("command_acc", "command acc.")]
    if any("callsign_acc_biased" in s for s in result.summary.values()):
        metrics.insert(3, ("callsign_acc_biased", "callsign acc.\nwith list"))
    series = {label: [_pct(s.get(key)) for key, _ in metrics] for label, s in result.summary.items()}
    fig, ax = plt.subplots(figsize=(1.7 * len(metrics) + 1.5, 4.2))
    _grouped_bars(ax, [name for _, name in metrics], series, "percent")
    n = result.report["selection"]["n_samples"]
    ax.set_title(f"Base vs fine-tuned on {n} samples (WER/CER lower is better, accuracies higher)")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_groups(path: Path, result: EvaluationResult, group: str, title: str) -> Path:
    """WER per value of ``group`` ("snr", "source", ...) per model (percent)."""
    plt = _pyplot()
    models = result.report["models"]
    categories: list[str] = []
    for data in models.values():
        for value in data["groups"][group]:
            if value not in categories:
                categories.append(value)
    series = {label: [_pct(data["groups"][group].get(c, {}).get("wer")) for c in categories]
              for label, data in models.items()}
    counts = {c: next((d["groups"][group][c]["n_utterances"] for d in models.values() if c in d["groups"][group]), 0)
              for c in categories}
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(categories) + 2), 4.2))
    _grouped_bars(ax, [f"{c}\n(n={counts[c]})" for c in categories], series, "WER (%)")
    ax.set_title(title)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_coverage(path: Path, result: EvaluationResult, settings: Settings) -> Path:
    """WER and callsign accuracy of the kept utterances against the share kept, per model."""
    plt = _pyplot()
    fig, (ax_wer, ax_cs) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"wspace": 0.25})
    for label, data in result.report["models"].items():
        curve = data["coverage"]
        xs = [100 * p["coverage"] for p in curve]
        style = {"color": _COLOURS.get(label), "marker": "o", "label": _LABELS.get(label, label)}
        ax_wer.plot(xs, [_pct(p["wer"]) for p in curve], **style)
        ax_cs.plot(xs, [_pct(p["callsign_acc"]) for p in curve], **style)
        at = data["configured_threshold"]
        if isinstance(at.get("coverage"), float) and math.isfinite(at["coverage"]) and at["kept"]["n"]:
            ax_wer.scatter([100 * at["coverage"]], [_pct(at["kept"]["wer"])], marker="*", s=160,
                           color=_COLOURS.get(label), edgecolor="black", zorder=5)
    threshold = settings.decode.confidence_threshold
    ax_wer.set_title(f"WER of kept utterances (star: threshold {threshold:g})")
    ax_cs.set_title("Callsign accuracy of kept utterances")
    for ax, ylabel in ((ax_wer, "WER (%)"), (ax_cs, "callsign accuracy (%)")):
        ax.set_xlabel("coverage: share of utterances kept, most confident first (%)")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 102)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_cs.set_ylim(0, 105)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def write_plots(folder: Path, result: EvaluationResult, settings: Settings) -> list[Path]:
    """Write the four evaluation PNGs into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        plot_summary(folder / SUMMARY_PNG, result),
        plot_groups(folder / SNR_PNG, result, "snr", "WER by SNR bucket (clean = no radio noise added)"),
        plot_groups(folder / SOURCE_PNG, result, "source", "WER by data source"),
        plot_coverage(folder / COVERAGE_PNG, result, settings),
    ]
