"""Static clips: a receiver's noise with no transmission on the frequency, the no-speech examples.

Whisper reports a no-speech probability at the start of decoding, and openai/whisper empties a
window it judges silent. A model tuned on transmissions alone loses that: over radio static it is
sure it heard "roger". The voice detector keeps most static from the model, but not all of it
(open squelch, crackle, a heterodyne). So ``prepare`` adds ``data.static_fraction`` static clips
per utterance (:meth:`~atc_whisper.audio.channel.RadioChannel.static`), training split only, with
an empty reference; training teaches them as no speech (the no-speech token first, then nothing).

Each clip is drawn from (seed, index), so growing ``data.samples`` adds clips and keeps the
earlier ones; its row is written in the same transaction-per-clip way as the utterances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..fsutil import sha256_file
from ..log import get_logger
from ..workspace import Workspace
from .catalogue import Catalogue, Sample

log = get_logger(__name__)

#: ``phase`` of a static clip in the catalogue.
STATIC_PHASE = "static"
#: Length of a static clip, s, drawn uniformly (what the segmenter passes on: 0.25 s and up).
STATIC_SECONDS = (0.5, 6.0)
#: Stream of the per-clip random generator (seed, index, stream).
STATIC_STREAM = 9_999


def static_uid(seed: int, index: int) -> str:
    """Uid of the ``index``-th static clip of generator seed ``seed``."""
    return f"syn-s{seed}-static{index:05d}"


def static_count(samples: int, fraction: float) -> int:
    """Static clips that go with ``samples`` utterances."""
    return round(samples * fraction)


def add_static_clips(workspace: Workspace, settings: Any, catalogue: Catalogue, source: str) -> tuple[int, int]:
    """Make and catalogue the missing static clips; returns (added, already there)."""
    from ..audio.channel import RadioChannel
    from ..audio.io import duration_s, write_wav

    data = settings.data
    wanted = [static_uid(data.seed, k) for k in range(static_count(data.samples, data.static_fraction))]
    existing = catalogue.uids(source)
    missing = [(k, uid) for k, uid in enumerate(wanted) if uid not in existing]
    if not missing:
        return 0, len(wanted)
    channel = RadioChannel(settings.channel, workspace.noise_dir)
    for k, uid in missing:
        rng = np.random.default_rng([data.seed, k, STATIC_STREAM])
        audio, params = channel.static(float(rng.uniform(*STATIC_SECONDS)), rng)
        path = workspace.augmented_dir / f"{uid}.wav"
        write_wav(path, audio)
        sample = Sample(uid=uid, audio_path=path, sha256=sha256_file(path), duration_s=round(duration_s(audio), 4),
                        text_raw="", text_norm="", split="train", source=source, augmented=True, phase=STATIC_PHASE,
                        group_id=f"static:{uid}", params={"channel": params, "index": k})
        with catalogue.transaction():
            catalogue.add_samples([sample])
    log.info("prepare: %d static clips added (no speech, training only)", len(missing))
    return len(missing), len(wanted) - len(missing)
