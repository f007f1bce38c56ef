"""How well roles, exchanges and the readback check work, on generated exchanges with known errors.

The readback flag is only worth showing a controller if it is right: a tool that cries wolf is
switched off, one that misses a wrong level is useless. `measure_readbacks` puts generated
exchanges (`phraseology.exchanges`, some readbacks wrong on purpose) on one frequency in
speaking order, optionally damages every transcript with simulated recognition errors
(`phraseology.asr_noise`), feeds them to a `Conversation` as live transcription would, and
scores:

* ``precision`` / ``recall`` / ``f1`` of the ``readback_mismatch`` flag against the planted errors
  (an unflagged or unchecked wrong readback is a miss);
* ``checked``: share of readbacks matched to their instruction and checked at all;
* ``role_accuracy`` (share of all transmissions whose role is right; "unknown" counts as wrong)
  and ``role_coverage`` (share not "unknown");
* ``exchange_accuracy``: share of readbacks placed in the same exchange as their instruction.

The same figures for a naive check (flag whenever the readback's parsed commands differ from
the instruction's, as a plain equality would) show what the equivalence rules buy.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..phraseology import parse_atc
from ..phraseology.asr_noise import simulate_asr_errors
from ..phraseology.conversation import Conversation
from ..phraseology.exchanges import frequency_order, generate_exchanges

#: Target on the synthetic exchanges (references): the flag must be right and must not miss.
TARGET_PRECISION = 0.9
TARGET_RECALL = 0.9
_WORDS_PER_S = 3.0  # real radio speech rate (median 3.2 words/s), to time the transmissions


@dataclass
class ReadbackFigures:
    """Scores of one run (see the module docstring)."""

    exchanges: int
    wrong: int
    word_error_rate: float
    precision: float
    recall: float
    f1: float
    checked: float
    role_accuracy: float
    role_coverage: float
    exchange_accuracy: float
    naive_precision: float
    naive_recall: float
    true_positives: int
    false_positives: int
    false_negatives: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def measure_readbacks(n: int = 1000, seed: int = 0, *, error_rate: float = 0.3, word_error_rate: float = 0.0,
                      interleave: float = 0.3, opening_rate: float = 0.2, gap_s: tuple[float, float] = (0.5, 4.0),
                      recognise: Callable[[str], str] | None = None, **conversation: float) -> ReadbackFigures:
    """Score roles, exchanges and the readback flag on ``n`` generated exchanges.

    Args:
        n: Exchanges to generate.
        seed: Seed of the exchanges, the interleaving, the gaps and the recognition errors.
        error_rate: Share of readbacks made wrong.
        word_error_rate: Simulated recognition errors per word (0: the references themselves).
        interleave: Chance that a readback comes after the next aircraft's instruction.
        opening_rate: Share of exchanges opened by a pilot's call.
        gap_s: Range of the silence between transmissions, seconds.
        recognise: Instead of simulated errors, a real recogniser: takes a transmission's TTS
            text and returns the transcript of its speech (see ``bench/readback.py --asr``).
        **conversation: `Conversation` arguments (``exchange_window_s`` ...).

    Returns:
        The figures.
    """
    exchanges = generate_exchanges(n, seed, error_rate=error_rate, opening_rate=opening_rate)
    turns = frequency_order(exchanges, seed, interleave=interleave)
    rng = random.Random(f"measure:{seed}")
    tracker = Conversation(**conversation)
    clock = 0.0
    heard: dict[int, str] = {}
    flagged: dict[int, bool] = {}
    checked = same_exchange = roles_right = roles_known = 0
    instruction_exchange: dict[int, int | None] = {}
    naive: dict[int, bool] = {}
    for k, turn in enumerate(turns):
        utterance = turn.utterance
        if recognise is not None:
            text = recognise(utterance.text)
        elif word_error_rate:
            text = simulate_asr_errors(utterance.reference, rng, word_error_rate)
        else:
            text = utterance.reference
        duration = max(len(text.split()), 1) / _WORDS_PER_S
        entry = tracker.add(text, start_s=clock, end_s=clock + duration, index=k)
        clock += duration + rng.uniform(*gap_s)
        roles_right += entry.role == utterance.role
        roles_known += entry.role != "unknown"
        exchange = exchanges[turn.exchange]
        if utterance is exchange.instruction:
            heard[turn.exchange] = text
            instruction_exchange[turn.exchange] = entry.exchange
        elif utterance is exchange.readback:
            checked += entry.readback is not None
            flagged[turn.exchange] = entry.readback_mismatch
            same_exchange += entry.exchange is not None and entry.exchange == instruction_exchange.get(turn.exchange)
            naive[turn.exchange] = set(parse_atc(heard[turn.exchange]).commands) != set(parse_atc(text).commands)
    truth = {k: x.wrong for k, x in enumerate(exchanges)}
    tp = sum(flagged[k] and truth[k] for k in truth)
    fp = sum(flagged[k] and not truth[k] for k in truth)
    fn = sum(truth[k] and not flagged[k] for k in truth)
    naive_tp = sum(naive[k] and truth[k] for k in truth)
    naive_fp = sum(naive[k] and not truth[k] for k in truth)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return ReadbackFigures(
        exchanges=n, wrong=sum(truth.values()), word_error_rate=word_error_rate,
        precision=precision, recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        checked=_ratio(checked, n), role_accuracy=_ratio(roles_right, len(turns)),
        role_coverage=_ratio(roles_known, len(turns)), exchange_accuracy=_ratio(same_exchange, n),
        naive_precision=_ratio(naive_tp, naive_tp + naive_fp), naive_recall=_ratio(naive_tp, sum(truth.values())),
        true_positives=tp, false_positives=fp, false_negatives=fn,
    )
