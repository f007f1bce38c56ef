"""Helpers shared by the training tests: a small real catalogue of synthesised ATC clips."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from atc_whisper.data.catalogue import Catalogue, Sample
from atc_whisper.fsutil import sha256_file
from atc_whisper.phraseology.everyday import everyday_sentence
from atc_whisper.workspace import Workspace

# Real phraseology in the ATC reference convention (words, digits spelled one by one).
PHRASES = [
    "speedbird one two three climb flight level three five zero",
    "lufthansa four five six turn left heading two seven zero",
    "ryanair seven eight contact tower one one eight decimal seven",
    "delta two two descend altitude three thousand feet",
    "skywest five cleared to land runway two seven left",
    "speedbird nine line up and wait runway zero nine",
    "lufthansa one reduce speed two one zero knots",
    "delta eight climb flight level two four zero",
]
VOICES = ["espeak:en-us", "espeak:en-gb"]


def make_catalogue(root: Path, synth_clip: Callable[..., Path], *, n_train: int = 6, n_dev: int = 2,
                   splits: list[str] | None = None, rehearsal: int = 0) -> Workspace:
    """An initialised workspace whose catalogue holds real TTS clips (train first, then dev).

    The first ``rehearsal`` clips are everyday English sentences (phase ``everyday``), as
    ``data.plain_fraction`` mixes into the training split.
    """
    ws = Workspace.at(root)
    ws.create()
    chosen = splits or ["train"] * n_train + ["dev"] * n_dev
    samples = []
    for i, split in enumerate(chosen):
        text = everyday_sentence(0, i) if i < rehearsal else PHRASES[i % len(PHRASES)]
        voice = VOICES[i % len(VOICES)]
        source = synth_clip(text, voice)
        path = ws.synthetic_dir / f"clip{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        import soundfile

        duration_s = soundfile.info(str(path)).duration
        samples.append(Sample(uid=f"t{i}", audio_path=path, sha256=sha256_file(path), duration_s=duration_s,
                              text_raw=text, text_norm=text, split=split, source="synthetic", engine="espeak",
                              voice=voice, group_id=f"g{i}", phase="everyday" if i < rehearsal else None))
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        catalogue.add_samples(samples)
    return ws


def copy_workspace(src: Workspace, dst: Path) -> Workspace:
    """A copy of a workspace's data, config and caches (not its models), for a separate run."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src.data_dir, dst / "data")
    shutil.copyfile(src.config_path, dst / src.config_path.name)
    ws = Workspace.at(dst)
    ws.create()
    if src.pretrained_dir.exists():  # the converted base model: reuse instead of converting again
        shutil.copytree(src.pretrained_dir, ws.pretrained_dir)
    return ws
