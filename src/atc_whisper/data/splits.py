"""Deterministic train/dev/test splits by leakage group, and the check that none leaks.

A model must never be scored on something it has heard in training. Rows are therefore
not split one by one but by *group*: every sample carries a ``group_id`` and a whole group
goes to one split.

* Synthetic data: the group is the reference text. A clean clip, its radio variants and any
  other utterance with the same words share a split. The split of a group is fixed by the
  position of its first utterance in the seeded generator's sequence with an even stride
  (:func:`position_split`), so ``--samples 10`` gives exactly 8/1/1 with the default
  fractions, and asking for more samples later never moves an existing group.
  Held-out test voices (``data.test_voices``) are then only ever used for test groups.
* Real corpora: the group is the speaker (ATCOSIM), the recording (ATCO2) or the speaker or
  source file (generic). Its split is a hash of the group id (:func:`hash_split`), stable
  across machines and runs.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict

from .catalogue import Catalogue


def hash_split(group_id: str, dev_fraction: float, test_fraction: float, *, salt: str = "atc-whisper") -> str:
    """Split of a group from a hash of its id: "test" with probability ``test_fraction``, etc.

    Args:
        group_id: the leakage group (speaker, recording ...).
        dev_fraction: share of groups for dev.
        test_fraction: share of groups for test.
        salt: changes the assignment as a whole (all groups reshuffled).
    """
    digest = hashlib.sha256(f"{salt}\0{group_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    if u < test_fraction:
        return "test"
    if u < test_fraction + dev_fraction:
        return "dev"
    return "train"


def _stride_hit(index: int, fraction: float, phase: float) -> bool:
    # True for exactly floor(n * fraction + phase) of the first n indices, evenly spread.
    return math.floor((index + 1) * fraction + phase) > math.floor(index * fraction + phase)


def position_split(index: int, dev_fraction: float, test_fraction: float) -> str:
    """Split of the ``index``-th group (0-based) in a sequence, with evenly spread dev/test slots.

    Of the first ``n`` positions, ``floor(n * test_fraction)`` are test and about
    ``n * dev_fraction`` are dev (dev is offset by half a stride so the two rarely collide;
    on a collision test wins). Appending positions never changes earlier ones.
    """
    if test_fraction > 0 and _stride_hit(index, test_fraction, 0.0):
        return "test"
    if dev_fraction > 0 and _stride_hit(index, dev_fraction, 0.5):
        return "dev"
    return "train"


def group_splits(groups: list[str], dev_fraction: float, test_fraction: float) -> list[str]:
    """Splits of a sequence of group ids: each group takes the split of its first position.

    Args:
        groups: group id of each item, in generation order.

    Returns:
        One split per item; items of the same group always share it.
    """
    first: dict[str, str] = {}
    out = []
    for index, group in enumerate(groups):
        if group not in first:
            first[group] = position_split(index, dev_fraction, test_fraction)
        out.append(first[group])
    return out


def check_leakage(catalogue: Catalogue, test_voices: list[str] | None = None) -> list[str]:
    """Problems that would let test or dev data leak into training; empty when clean.

    Checks that (1) no leakage group has samples in more than one split, (2) every augmented
    sample is in its clean parent's split, and (3) held-out ``test_voices`` appear only in test.
    """
    problems: list[str] = []
    conn = catalogue.connection
    rows = conn.execute(
        "SELECT group_id, GROUP_CONCAT(DISTINCT split) AS splits, COUNT(*) AS n FROM samples "
        "GROUP BY group_id HAVING COUNT(DISTINCT split) > 1 ORDER BY group_id"
    ).fetchall()
    for r in rows:
        problems.append(f"group {r['group_id']!r} ({r['n']} samples) is in several splits: {r['splits']}")
    rows = conn.execute(
        "SELECT c.uid AS child, c.split AS cs, p.uid AS parent, p.split AS ps FROM samples c "
        "JOIN samples p ON p.uid = c.parent_uid WHERE c.split != p.split ORDER BY c.id"
    ).fetchall()
    for r in rows:
        problems.append(f"augmented sample {r['child']} is in {r['cs']} but its clean parent {r['parent']} is in {r['ps']}")
    from ..audio.tts import voice_parents

    held = set(test_voices or [])
    outside_test: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if held:
        # A blend that mixes a held-out voice in leaks it too (Kokoro voice mixing).
        for r in conn.execute("SELECT voice, split, COUNT(*) FROM samples WHERE voice IS NOT NULL AND split != 'test' "
                              "GROUP BY voice, split"):
            for parent in set(voice_parents(r[0])) & held:
                outside_test[parent][r[1]] += r[2]
    for voice in test_voices or []:
        outside = outside_test.get(voice)
        if outside:
            problems.append(f"held-out test voice {voice} appears outside test: {dict(sorted(outside.items()))}")
    return problems
