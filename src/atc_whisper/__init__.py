"""ATC Whisper: fine-tune and run OpenAI Whisper for air-traffic-control radio speech."""

__version__ = "0.1.0"

SAMPLE_RATE = 16_000  # Whisper's feature extractor works at 16 kHz only
