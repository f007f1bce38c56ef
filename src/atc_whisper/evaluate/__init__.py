"""Evaluation: ATC metrics, base vs fine-tuned comparison, reports and plots.

``metrics`` is pure and cheap to import; :func:`run_evaluation` (models, catalogue, plots) is
imported on first use so that ``import atc_whisper.evaluate`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .metrics import align, cer, score_atc, score_corpus, sentence_error_rate, wer

if TYPE_CHECKING:
    from .evaluate import EvaluationResult

__all__ = ["EvaluationResult", "align", "cer", "run_evaluation", "score_atc", "score_corpus", "sentence_error_rate", "wer"]


def run_evaluation(workspace: Any, settings: Any, **kwargs: Any) -> EvaluationResult:
    """Evaluate base and fine-tuned models and write every report; see :func:`.evaluate.run_evaluation`."""
    from .evaluate import run_evaluation as _run

    return _run(workspace, settings, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "EvaluationResult":
        from .evaluate import EvaluationResult

        return EvaluationResult
    raise AttributeError(name)
