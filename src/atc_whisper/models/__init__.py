"""Whisper models: resolve a name to a Hugging Face folder, convert CTranslate2 <-> HF, load, export.

Import the submodules directly (``atc_whisper.models.resolve`` ...); this package keeps
its import light so ``atc-whisper --help`` does not load torch.
"""
