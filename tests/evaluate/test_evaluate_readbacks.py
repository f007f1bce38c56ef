"""Readback-check figures on generated exchanges (what bench/readback.py prints)."""

from __future__ import annotations

import math

from atc_whisper.evaluate.readbacks import TARGET_PRECISION, TARGET_RECALL, measure_readbacks


def test_reference_figures_meet_the_target_and_beat_the_naive_check():
    figures = measure_readbacks(300, seed=1)
    assert figures.wrong > 60
    assert figures.precision >= TARGET_PRECISION and figures.recall >= TARGET_RECALL, figures
    assert figures.checked >= 0.98 and figures.exchange_accuracy >= 0.98 and figures.role_accuracy >= 0.98
    # a plain comparison of parsed commands flags the legitimate short readbacks
    assert figures.naive_precision < figures.precision - 0.1
    assert figures.true_positives + figures.false_negatives == figures.wrong


def test_recognition_errors_cost_precision_and_recall():
    clean = measure_readbacks(200, seed=2)
    noisy = measure_readbacks(200, seed=2, word_error_rate=0.15)
    assert noisy.f1 < clean.f1 and noisy.checked < clean.checked
    assert not math.isnan(noisy.precision) and 0.0 < noisy.recall < 1.0
    assert noisy.as_dict()["word_error_rate"] == 0.15
