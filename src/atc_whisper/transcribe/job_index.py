"""The output folder's record of finished files, and the lock that keeps one run per folder.

``OUT/.atc_whisper/index.jsonl`` holds one JSON object per output (its input, size,
modification time, content hash, job key, audio length, or why it failed): appended, flushed
and synced after every file, so an interrupted run loses at most the files in flight. Reading
it back, the last line of an output wins and a line cut short by a kill is ignored.
``model_hashes.json`` caches the model files' hashes by size and modification time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError
from ..fsutil import atomic_write_text

#: Folder of the output directory that holds the index, the hash cache and the lock.
STATE_DIR = ".atc_whisper"
INDEX_NAME = "index.jsonl"
MODEL_HASHES_NAME = "model_hashes.json"
LOCK_NAME = "lock"
# What atomic_path leaves behind when a process is killed: ".<name>.<8 random chars>.tmp".
_LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class JobIndex:
    """The record of finished files in ``OUT/.atc_whisper/``, and the lock that keeps one run per folder.

    ``index.jsonl`` holds one JSON object per finished output (the last line for an output
    wins); it is appended to, flushed and synced after every file, and rewritten compactly
    when opened. A line cut short by a kill is ignored.

    Raises:
        ConfigError: Another run holds the folder's lock.
    """

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.state_dir = output_dir / STATE_DIR
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / INDEX_NAME
        self._lock_handle = self._lock()
        self.entries: dict[str, dict[str, Any]] = {}
        lines = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                lines += 1
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and "output" in entry:
                        self.entries[str(entry["output"])] = entry
        if lines != len(self.entries):
            self._rewrite()
        self._handle: TextIO | None = self.path.open("a", encoding="utf-8")
        self.model_hashes: dict[str, list[Any]] = self._read_json(self.state_dir / MODEL_HASHES_NAME)

    def _lock(self) -> Any:
        handle = (self.state_dir / LOCK_NAME).open("a+", encoding="utf-8")
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(f"another transcription ({holder}) is writing to {self.output_dir}; wait for it to "
                              "finish, or choose another --output folder.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        return handle

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _rewrite(self) -> None:
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries.values())
        atomic_write_text(self.path, text)

    def get(self, output: str) -> dict[str, Any] | None:
        """The entry of ``output`` (path below the output folder, with suffix), if finished before."""
        return self.entries.get(output)

    def record(self, entry: dict[str, Any]) -> None:
        """Add or replace the entry of ``entry["output"]``, durably."""
        self.entries[str(entry["output"])] = entry
        assert self._handle is not None
        self._handle.write(json.dumps(entry, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def save_model_hashes(self) -> None:
        """Keep the model files' hash cache for the next run."""
        atomic_write_text(self.state_dir / MODEL_HASHES_NAME, json.dumps(self.model_hashes, sort_keys=True))

    def close(self) -> None:
        """Close the index and release the lock (idempotent)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None


def remove_leftovers(output_dir: Path) -> int:
    """Delete the temporary files a killed run left in ``output_dir`` (``.<name>.<random>.tmp``); returns how many."""
    removed = 0
    for root, _, files in os.walk(output_dir):
        for name in files:
            if _LEFTOVER.match(name):
                with contextlib.suppress(OSError):
                    (Path(root) / name).unlink()
                    removed += 1
    return removed
