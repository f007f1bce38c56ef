"""The real `atc-whisper serve` as a subprocess on a free loopback port, for the serve tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

_URL = re.compile(r"on (http://127\.0\.0\.1:\d+)/")


class ServerProcess:
    """`python -m atc_whisper serve ... --port 0`; :attr:`url` is read from its start-up line.

    Args:
        args: Arguments after ``serve`` (workspace, model, sources, settings).
        env: Extra environment variables.
        ready_timeout_s: How long the model load and start-up may take.
    """

    def __init__(self, args: list[str], env: dict[str, str] | None = None, ready_timeout_s: float = 180.0) -> None:
        self.args = ["serve", "--port", "0", *args]
        self.proc = subprocess.Popen([sys.executable, "-m", "atc_whisper", *self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr, False), daemon=True).start()
        if not self._ready.wait(ready_timeout_s) or not self.url:
            self.kill()
            raise AssertionError(f"server did not start: {''.join(self.stdout)}{''.join(self.stderr)}")

    def _read(self, stream, lines: list[str], look_for_url: bool) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            lines.append(line)
            if look_for_url and not self.url:
                match = _URL.search(line)
                if match:
                    self.url = match.group(1)
                    self._ready.set()
        self._ready.set()  # the process ended (start-up failed)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout_s: float = 90.0) -> int:
        """Ctrl-C, then wait for a clean exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout_s)
        finally:
            self.kill()
        time.sleep(0.1)  # let the reader threads take the last lines
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)
