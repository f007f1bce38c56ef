"""Audio: file reading/writing, text-to-speech voices and the simulated VHF radio channel.

Submodules (imported on demand so ``import atc_whisper.audio`` stays light):

* :mod:`atc_whisper.audio.io` - load any audio file as 16 kHz mono, write WAV, silence check.
* :mod:`atc_whisper.audio.tts` - pluggable TTS engines (eSpeak NG, Piper, Kokoro, Flite, Festival) and their voices.
* :mod:`atc_whisper.audio.channel` - radio channel simulation for data augmentation.
"""

from .io import SAMPLE_RATE, check_speech, load_audio, write_wav

__all__ = ["SAMPLE_RATE", "check_speech", "load_audio", "write_wav"]
