"""Scoring transcripts the way an ATC person reads them.

Why this module exists: corpus word error rate alone rewards a model that merely stops
looping, and says nothing about whether the callsign or the flight level was right. Here are
the pure functions (no model, no files) that every part of the toolkit scores with:

* a word-level Levenshtein alignment with backtrace (:func:`align`), so each reference word is
  known to be a hit, a substitution or a deletion and each extra word an insertion;
* corpus figures (:func:`score_corpus`): WER, CER, sentence error rate, correct-word count,
  insertion rate and the median per-utterance WER, on ATC-normalised text with the raw
  (case and punctuation only) WER beside it;
* ATC figures (:func:`score_atc`): callsign accuracy and command accuracy (type and value both
  right), from the phraseology parser;
* accuracy against coverage (:func:`coverage_curve`): keep only the most confident share of the
  utterances and see what WER and callsign accuracy the kept ones have.

Conventions:

* WER = (substitutions + deletions + insertions) / reference words. An empty reference counts
  as one word, so a hypothesis for silence scores its insertion count (0 when it is empty too);
  the same rule makes the corpus WER of an all-empty reference set equal to its insertions.
* Texts are normalised before alignment: ``normalize=True`` uses the ATC scoring normaliser
  (:func:`atc_whisper.phraseology.normalize_atc`: numerals spelled as digits, ICAO spelling
  variants, hesitations removed), ``"raw"`` only lower-cases and strips punctuation,
  ``False`` only splits on whitespace, and a callable is used as given.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError, DataError

Normalize = bool | Literal["raw"] | Callable[[str], str]

HIT, SUB, DEL, INS = "hit", "sub", "del", "ins"


# -- alignment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alignment:
    """Word (or character) alignment of one hypothesis against one reference.

    Attributes:
        ops: One ``(op, ref_token, hyp_token)`` per aligned position, in order; ``op`` is
            ``"hit"``, ``"sub"``, ``"del"`` (``hyp_token`` is None) or ``"ins"`` (``ref_token`` is None).
        hits: Reference tokens recognised correctly.
        subs: Reference tokens replaced by a different token.
        dels: Reference tokens missing from the hypothesis.
        ins: Hypothesis tokens with no reference counterpart.
    """

    ops: tuple[tuple[str, str | None, str | None], ...] = field(default=())
    hits: int = 0
    subs: int = 0
    dels: int = 0
    ins: int = 0

    @property
    def n_ref(self) -> int:
        """Number of reference tokens (hits + substitutions + deletions)."""
        return self.hits + self.subs + self.dels

    @property
    def n_hyp(self) -> int:
        """Number of hypothesis tokens (hits + substitutions + insertions)."""
        return self.hits + self.subs + self.ins

    @property
    def errors(self) -> int:
        """Edit distance: substitutions + deletions + insertions."""
        return self.subs + self.dels + self.ins

    @property
    def error_rate(self) -> float:
        """Errors per reference token; an empty reference counts as one token."""
        return self.errors / max(self.n_ref, 1)


def align(ref: Sequence[str], hyp: Sequence[str]) -> Alignment:
    """Minimum-edit alignment of two token sequences, with its backtrace.

    Every edit costs 1. Among alignments with the fewest edits the one with the most hits is
    chosen (``a b`` -> ``b c`` is "delete a, keep b, insert c", not two substitutions), so the
    correct-word count is as high as the edit distance allows; remaining ties prefer a match
    or substitution, then a deletion, then an insertion, so the counts are deterministic.

    Args:
        ref: Reference tokens (words, or characters for CER).
        hyp: Hypothesis tokens.

    Returns:
        The :class:`Alignment` with per-token operations and their counts.
    """
    n, m = len(ref), len(hyp)
    # One cost orders (edits, -hits) lexicographically: an edit costs more than all hits together.
    edit = n + m + 1
    # cost[i][j]: best cost of aligning ref[:i] with hyp[:j].
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        cost[0][j] = j * edit
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        row[0] = i * edit
        r = ref[i - 1]
        for j in range(1, m + 1):
            diag = prev[j - 1] + (-1 if r == hyp[j - 1] else edit)
            up = prev[j] + edit
            left = row[j - 1] + edit
            row[j] = diag if diag <= up and diag <= left else (up if up <= left else left)
    ops: list[tuple[str, str | None, str | None]] = []
    counts = {HIT: 0, SUB: 0, DEL: 0, INS: 0}
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0:
            same = ref[i - 1] == hyp[j - 1]
            if cost[i][j] == cost[i - 1][j - 1] + (-1 if same else edit):
                op = HIT if same else SUB
                ops.append((op, ref[i - 1], hyp[j - 1]))
                counts[op] += 1
                i, j = i - 1, j - 1
                continue
        if i > 0 and cost[i][j] == cost[i - 1][j] + edit:
            ops.append((DEL, ref[i - 1], None))
            counts[DEL] += 1
            i -= 1
        else:
            ops.append((INS, None, hyp[j - 1]))
            counts[INS] += 1
            j -= 1
    ops.reverse()
    return Alignment(tuple(ops), counts[HIT], counts[SUB], counts[DEL], counts[INS])


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance only (two rows, no backtrace): the fast path for CER."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref  # distance is symmetric; keep the rows short
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        row = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            row[j] = min(prev[j - 1] + (r != h), prev[j] + 1, row[j - 1] + 1)
        prev = row
    return prev[-1]


# -- normalisation ----------------------------------------------------------------------------


def get_normalizer(normalize: Normalize) -> Callable[[str], str]:
    """The text normaliser chosen by ``normalize`` (see the module docstring)."""
    if callable(normalize):
        return normalize
    if normalize == "raw":
        from ..phraseology import raw_normalize

        return raw_normalize
    if normalize:
        from ..phraseology import normalize_atc

        return normalize_atc
    return lambda text: " ".join(text.split())


def words(text: str) -> list[str]:
    """Whitespace tokens of an already normalised text."""
    return text.split()


# -- corpus scores ----------------------------------------------------------------------------


def _check_lengths(refs: Sequence[str], hyps: Sequence[str]) -> None:
    if len(refs) != len(hyps):
        raise DataError(f"{len(refs)} references but {len(hyps)} hypotheses; they must pair up one to one.")


def align_corpus(refs: Sequence[str], hyps: Sequence[str], *, normalize: Normalize = True) -> list[Alignment]:
    """Word alignment of each (reference, hypothesis) pair after normalising both sides."""
    _check_lengths(refs, hyps)
    norm = get_normalizer(normalize)
    return [align(words(norm(r)), words(norm(h))) for r, h in zip(refs, hyps, strict=True)]


def wer(refs: Sequence[str], hyps: Sequence[str], *, normalize: Normalize = True) -> float:
    """Corpus word error rate: total edits over total reference words.

    Args:
        refs: Reference transcripts.
        hyps: Hypotheses, one per reference.
        normalize: True for the ATC scoring normaliser, "raw" for case/punctuation only,
            False for none, or a callable.

    Returns:
        WER as a fraction (0.05 is 5 %); may exceed 1 when the hypotheses add many words.
    """
    alignments = align_corpus(refs, hyps, normalize=normalize)
    errors = sum(a.errors for a in alignments)
    return errors / max(sum(a.n_ref for a in alignments), 1)


def utterance_wers(refs: Sequence[str], hyps: Sequence[str], *, normalize: Normalize = True) -> list[float]:
    """WER of each utterance on its own."""
    return [a.error_rate for a in align_corpus(refs, hyps, normalize=normalize)]


def cer(refs: Sequence[str], hyps: Sequence[str], *, normalize: Normalize = True) -> float:
    """Corpus character error rate on the normalised texts (single spaces count as characters)."""
    _check_lengths(refs, hyps)
    norm = get_normalizer(normalize)
    errors = n_chars = 0
    for r, h in zip(refs, hyps, strict=True):
        ref_text, hyp_text = " ".join(words(norm(r))), " ".join(words(norm(h)))
        errors += edit_distance(ref_text, hyp_text)
        n_chars += len(ref_text)
    return errors / max(n_chars, 1)


def sentence_error_rate(refs: Sequence[str], hyps: Sequence[str], *, normalize: Normalize = True) -> float:
    """Share of utterances whose normalised hypothesis differs from the reference at all."""
    alignments = align_corpus(refs, hyps, normalize=normalize)
    return sum(1 for a in alignments if a.errors) / max(len(alignments), 1)


def median(values: Sequence[float]) -> float:
    """Median of ``values``; NaN for an empty list (nothing to summarise)."""
    return float(statistics.median(values)) if values else math.nan


def summarize_alignments(alignments: Sequence[Alignment]) -> dict[str, Any]:
    """Corpus word figures from per-utterance alignments (the word part of :func:`score_corpus`)."""
    hits = sum(a.hits for a in alignments)
    subs = sum(a.subs for a in alignments)
    dels = sum(a.dels for a in alignments)
    ins = sum(a.ins for a in alignments)
    n_ref = hits + subs + dels
    per_utt = [a.error_rate for a in alignments]
    return {
        "n_utterances": len(alignments),
        "n_ref_words": n_ref,
        "n_hyp_words": hits + subs + ins,
        "hits": hits,
        "subs": subs,
        "dels": dels,
        "ins": ins,
        "wer": (subs + dels + ins) / max(n_ref, 1),
        "ser": sum(1 for a in alignments if a.errors) / max(len(alignments), 1),
        "insertion_rate": ins / max(n_ref, 1),
        "correct_word_rate": hits / max(n_ref, 1),
        "median_utt_wer": median(per_utt),
        "mean_utt_wer": sum(per_utt) / len(per_utt) if per_utt else math.nan,
    }


def score_corpus(refs: Sequence[str], hyps: Sequence[str], *, normalize: Normalize = True) -> dict[str, Any]:
    """Every text figure of a set of transcripts.

    Args:
        refs: Reference transcripts.
        hyps: Hypotheses, one per reference.
        normalize: Normaliser for the main figures (see :func:`get_normalizer`).

    Returns:
        A dict with ``wer``, ``cer``, ``ser`` (sentence error rate), ``hits`` (correct words),
        ``subs``, ``dels``, ``ins``, ``n_ref_words``, ``n_hyp_words``, ``n_utterances``,
        ``insertion_rate`` (insertions per reference word), ``correct_word_rate``,
        ``median_utt_wer``, ``mean_utt_wer`` and ``raw_wer`` (case and punctuation only;
        equal to ``wer`` unless ``normalize`` is True).
    """
    result = summarize_alignments(align_corpus(refs, hyps, normalize=normalize))
    result["cer"] = cer(refs, hyps, normalize=normalize)
    result["raw_wer"] = wer(refs, hyps, normalize="raw") if normalize is True else result["wer"]
    return result


# -- ATC scores -------------------------------------------------------------------------------


def command_type(command: Any) -> str:
    """The type name of a parsed command (e.g. "heading"), whatever the parser calls the field."""
    for attr in ("kind", "type", "name", "action"):
        value = getattr(command, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(command).__name__


@dataclass(frozen=True)
class AtcScore:
    """ATC facts of one (reference, hypothesis) pair.

    Attributes:
        ref_callsign: Callsign parsed from the reference (None when it names none).
        hyp_callsign: Callsign parsed from the hypothesis.
        callsign_correct: Whether they are equal; None when the reference has no callsign
            (such utterances do not count towards callsign accuracy).
        callsign_miss: How the callsign was misheard (see
            :func:`atc_whisper.phraseology.callsigns.callsign_miss_kind`); None when it was
            right or the reference has none.
        ref_commands: Number of commands in the reference.
        hyp_commands: Number of commands in the hypothesis.
        commands_matched: Reference commands found in the hypothesis with type and value right
            (multiset match, so a repeated command counts once per occurrence).
        commands_correct: Whether the hypothesis has exactly the reference's commands; None
            when the reference has none.
        per_type: ``{type: (ref count, hyp count, matched)}``.
    """

    ref_callsign: str | None
    hyp_callsign: str | None
    callsign_correct: bool | None
    ref_commands: int
    hyp_commands: int
    commands_matched: int
    commands_correct: bool | None
    per_type: dict[str, tuple[int, int, int]]
    callsign_miss: str | None = None


def _parse(text: str) -> Any:
    from ..phraseology import normalize_atc, parse_atc

    # The parser reads the ATC reference convention, so hypotheses are normalised first
    # ("FL350" -> "flight level three five zero"); references already are, and stay unchanged.
    return parse_atc(normalize_atc(text))


def score_atc_pair(ref: str, hyp: str, *, ref_parsed: Any = None, hyp_parsed: Any = None) -> AtcScore:
    """Callsign and command correctness of one hypothesis.

    Args:
        ref: Reference transcript.
        hyp: Hypothesis transcript.
        ref_parsed: The reference's ``ParsedTransmission`` if already known (skips parsing).
        hyp_parsed: The hypothesis's ``ParsedTransmission`` if already known (e.g. after
            callsign snapping).

    Returns:
        An :class:`AtcScore`.
    """
    from ..phraseology.callsigns import callsign_miss_kind

    r = ref_parsed if ref_parsed is not None else _parse(ref)
    h = hyp_parsed if hyp_parsed is not None else _parse(hyp)
    ref_cmds, hyp_cmds = Counter(r.commands), Counter(h.commands)
    matched = ref_cmds & hyp_cmds
    per_type: dict[str, list[int]] = {}
    for counter, slot in ((ref_cmds, 0), (hyp_cmds, 1), (matched, 2)):
        for cmd, count in counter.items():
            per_type.setdefault(command_type(cmd), [0, 0, 0])[slot] += count
    return AtcScore(
        ref_callsign=r.callsign,
        hyp_callsign=h.callsign,
        callsign_correct=None if not r.callsign else r.callsign == h.callsign,
        ref_commands=sum(ref_cmds.values()),
        hyp_commands=sum(hyp_cmds.values()),
        commands_matched=sum(matched.values()),
        commands_correct=None if not ref_cmds else ref_cmds == hyp_cmds,
        per_type={k: (v[0], v[1], v[2]) for k, v in sorted(per_type.items())},
        callsign_miss=callsign_miss_kind(r.callsign, h.callsign) if r.callsign else None,
    )


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def summarize_atc(scores: Sequence[AtcScore]) -> dict[str, Any]:
    """Corpus ATC figures from per-utterance :class:`AtcScore` (the part of :func:`score_atc`)."""
    from ..phraseology.callsigns import CALLSIGN_MISS_KINDS

    with_callsign = [s for s in scores if s.callsign_correct is not None]
    with_commands = [s for s in scores if s.commands_correct is not None]
    ref_total = sum(s.ref_commands for s in scores)
    hyp_total = sum(s.hyp_commands for s in scores)
    matched_total = sum(s.commands_matched for s in scores)
    types: dict[str, list[int]] = {}
    for s in scores:
        for name, counts in s.per_type.items():
            slot = types.setdefault(name, [0, 0, 0])
            for k in range(3):
                slot[k] += counts[k]
    return {
        "n_with_callsign": len(with_callsign),
        "callsign_correct": sum(1 for s in with_callsign if s.callsign_correct),
        "callsign_acc": _ratio(sum(1 for s in with_callsign if s.callsign_correct), len(with_callsign)),
        # What went wrong in the misses: nothing heard, the airline, the number, both, a registration.
        "callsign_misses": {kind: sum(1 for s in with_callsign if s.callsign_miss == kind) for kind in CALLSIGN_MISS_KINDS},
        "n_ref_commands": ref_total,
        "n_hyp_commands": hyp_total,
        "commands_matched": matched_total,
        # Command accuracy: share of reference commands recognised with type and value right.
        "command_acc": _ratio(matched_total, ref_total),
        "command_precision": _ratio(matched_total, hyp_total),
        "n_with_commands": len(with_commands),
        "utterance_command_acc": _ratio(sum(1 for s in with_commands if s.commands_correct), len(with_commands)),
        "per_command": {
            name: {
                "n_ref": c[0],
                "n_hyp": c[1],
                "matched": c[2],
                "recall": _ratio(c[2], c[0]),
                "precision": _ratio(c[2], c[1]),
            }
            for name, c in sorted(types.items())
        },
    }


def score_atc(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, Any]:
    """Callsign and command accuracy of a set of transcripts.

    Callsign accuracy counts only utterances whose reference names a callsign; command
    accuracy is the share of reference commands whose type and value are both right
    (``command_acc``), beside ``command_precision``, the share of utterances with every command
    right (``utterance_command_acc``) and recall/precision per command type (``per_command``).
    Ratios with nothing to count are NaN.
    """
    _check_lengths(refs, hyps)
    return summarize_atc([score_atc_pair(r, h) for r, h in zip(refs, hyps, strict=True)])


# -- confidence and coverage ----------------------------------------------------------------

DEFAULT_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def coverage_curve(
    confidences: Sequence[float],
    errors: Sequence[int],
    n_ref_words: Sequence[int],
    callsign_correct: Sequence[bool | None],
    shares: Sequence[float] = DEFAULT_SHARES,
) -> list[dict[str, Any]]:
    """Accuracy against coverage: WER and callsign accuracy of the most confident utterances.

    Utterances are sorted by confidence, highest first (ties keep their input order); for
    each share the top ``ceil(share * n)`` are kept.

    Args:
        confidences: Confidence of each utterance (higher is surer, e.g. average log-probability).
        errors: Word errors of each utterance.
        n_ref_words: Reference words of each utterance.
        callsign_correct: Callsign correctness of each utterance (None: no reference callsign).
        shares: Coverage levels in (0, 1].

    Returns:
        One dict per share: ``share`` (asked), ``coverage`` (kept / n), ``n_kept``,
        ``threshold`` (lowest kept confidence), ``wer`` and ``callsign_acc`` of the kept ones.
    """
    n = len(confidences)
    if not (len(errors) == len(n_ref_words) == len(callsign_correct) == n):
        raise DataError("confidences, errors, n_ref_words and callsign_correct must have the same length.")
    order = sorted(range(n), key=lambda k: -confidences[k])
    curve = []
    for share in shares:
        if not 0.0 < share <= 1.0:
            raise ConfigError(f"coverage share {share} must be in (0, 1]; fix evaluate.coverage_shares.")
        if n == 0:
            continue
        kept = order[: max(1, math.ceil(share * n - 1e-9))]
        with_cs = [callsign_correct[k] for k in kept if callsign_correct[k] is not None]
        curve.append({
            "share": share,
            "coverage": len(kept) / n,
            "n_kept": len(kept),
            "threshold": confidences[kept[-1]],
            "wer": sum(errors[k] for k in kept) / max(sum(n_ref_words[k] for k in kept), 1),
            "callsign_acc": _ratio(sum(1 for c in with_cs if c), len(with_cs)),
        })
    return curve


def threshold_split(
    confidences: Sequence[float],
    errors: Sequence[int],
    n_ref_words: Sequence[int],
    callsign_correct: Sequence[bool | None],
    threshold: float,
) -> dict[str, Any]:
    """What flagging below ``threshold`` does: coverage and accuracy of kept vs flagged utterances."""
    kept = [k for k, c in enumerate(confidences) if c >= threshold]
    flagged = [k for k, c in enumerate(confidences) if c < threshold]

    def part(idx: list[int]) -> dict[str, Any]:
        with_cs = [callsign_correct[k] for k in idx if callsign_correct[k] is not None]
        return {
            "n": len(idx),
            "wer": sum(errors[k] for k in idx) / max(sum(n_ref_words[k] for k in idx), 1) if idx else math.nan,
            "callsign_acc": _ratio(sum(1 for c in with_cs if c), len(with_cs)),
        }

    return {
        "threshold": threshold,
        "coverage": len(kept) / len(confidences) if confidences else math.nan,
        "kept": part(kept),
        "flagged": part(flagged),
    }
