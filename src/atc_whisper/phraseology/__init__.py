"""ATC phraseology: vocabulary, utterance generator, scoring normaliser, parser, callsign lists,
speaker roles, readback checks and the conversation tracker that groups exchanges.

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
from atc_whisper.phraseology.conversation import Conversation, ConversationEntry, analyse_transmissions
from atc_whisper.phraseology.exchanges import Exchange, generate_exchanges
from atc_whisper.phraseology.generator import PHASES, ROLES, Utterance, generate_utterances
from atc_whisper.phraseology.normalize import normalize_atc, raw_normalize
from atc_whisper.phraseology.parser import parse_atc
from atc_whisper.phraseology.plain import PLAIN_SENTENCES, plain_sentences
from atc_whisper.phraseology.readback import ReadbackResult, check_readback
from atc_whisper.phraseology.roles import RoleGuess, classify_role
from atc_whisper.phraseology.vocabulary import write_vocabulary

__all__ = [
    "COMMAND_TYPES",
    "PHASES",
    "PLAIN_SENTENCES",
    "ROLES",
    "RUNWAY_CLEARANCES",
    "Command",
    "Conversation",
    "ConversationEntry",
    "Exchange",
    "ParsedTransmission",
    "ReadbackResult",
    "RoleGuess",
    "Utterance",
    "analyse_transmissions",
    "callsign_distance",
    "callsign_reference",
    "check_readback",
    "classify_role",
    "generate_exchanges",
    "generate_utterances",
    "load_callsigns",
    "normalize_atc",
    "parse_atc",
    "plain_sentences",
    "raw_normalize",
    "snap_callsign",
    "write_vocabulary",
]
