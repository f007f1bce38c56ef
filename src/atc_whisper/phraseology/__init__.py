"""ATC phraseology: vocabulary, utterance generator, scoring normaliser, parser, callsign lists.

Pure Python (no heavy dependencies): imported by data preparation, training, evaluation and
live transcription alike.
"""

from __future__ import annotations

from atc_whisper.phraseology.callsigns import (
    callsign_distance,
    callsign_reference,
    load_callsigns,
    snap_callsign,
)
from atc_whisper.phraseology.commands import COMMAND_TYPES, RUNWAY_CLEARANCES, Command, ParsedTransmission
from atc_whisper.phraseology.generator import PHASES, ROLES, Utterance, generate_utterances
from atc_whisper.phraseology.normalize import normalize_atc, raw_normalize
from atc_whisper.phraseology.parser import parse_atc
from atc_whisper.phraseology.plain import PLAIN_SENTENCES, plain_sentences
from atc_whisper.phraseology.vocabulary import write_vocabulary

__all__ = [
    "COMMAND_TYPES",
    "PHASES",
    "PLAIN_SENTENCES",
    "ROLES",
    "RUNWAY_CLEARANCES",
    "Command",
    "ParsedTransmission",
    "Utterance",
    "callsign_distance",
    "callsign_reference",
    "generate_utterances",
    "load_callsigns",
    "normalize_atc",
    "parse_atc",
    "plain_sentences",
    "raw_normalize",
    "snap_callsign",
    "write_vocabulary",
]
