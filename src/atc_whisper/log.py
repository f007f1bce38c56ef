"""Logging to the console and to the workspace's ``atc_model_training.log``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "atc_whisper"
_FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def get_logger(name: str = "") -> logging.Logger:
    """The package logger or one of its children (``get_logger(__name__)``)."""
    if not name or name == LOGGER_NAME:
        return logging.getLogger(LOGGER_NAME)
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


def setup_logging(log_file: Path | None = None, level: str = "INFO", console: bool = True) -> logging.Logger:
    """Attach a console handler (stderr, messages only) and a file handler (timestamps, DEBUG).

    Safe to call more than once: handlers from an earlier call are replaced.
    """
    logger = get_logger()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(getattr(logging, level.upper(), logging.INFO))
        stream.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter(_FILE_FORMAT))
        logger.addHandler(file_handler)
    return logger
