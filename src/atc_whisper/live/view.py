"""The live console view: one line per transmission, doubtful ones in another colour.

A line reads::

    21:05:03.120  3.4s  0.62s  ATC #3  lufthansa four five six | climb FL340  lufthansa four five six climb ...
    21:05:07.410  2.9s  0.55s  PLT #3  lufthansa four five six | climb FL330  ... READBACK MISMATCH: level FL340 read back as FL330

wall-clock start (local time), duration, latency (end of transmission to transcript),
speaker role (ATC, PLT or ``?``) and exchange id, parsed callsign and commands, then the
text; a checked readback ends with ``readback ok`` or, in red, ``READBACK MISMATCH`` and what
differed. Low-confidence transcripts are yellow and marked ``?`` with the reason; when the
recogniser falls behind the line ends with ``[N behind]``. Colours are dropped when the output
is not a terminal.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape

from ..phraseology.readback import describe_differences
from .runner import LiveRecord, LiveSummary
from .segmenter import Transmission


def _commands(commands: list[dict[str, Any]]) -> str:
    parts = []
    for c in commands:
        kind = c.get("kind") or c.get("type") or c.get("name") or c.get("command") or ""
        value = c.get("value")
        unit = c.get("unit") or ""
        parts.append(" ".join(str(p) for p in (kind, value, unit) if p not in (None, "")))
    return ", ".join(p for p in parts if p)


_ROLE_TAGS = {"controller": "[magenta]ATC[/magenta]", "pilot": "[blue]PLT[/blue]"}


def format_record(record: LiveRecord) -> str:
    """The rich-markup line for one transmission."""
    clock = time.strftime("%H:%M:%S", time.localtime(record.wall_start)) + f".{int(record.wall_start % 1 * 1000):03d}"
    facts = " | ".join(p for p in (record.callsign or "", _commands(record.commands)) if p)
    text = escape(record.text) if record.text else "[dim](no speech recognised)[/dim]"
    line = f"[cyan]{clock}[/cyan] {record.duration_s:5.1f}s {record.latency_s:5.2f}s  "
    line += _ROLE_TAGS.get(record.role, "[dim]?  [/dim]")
    line += f" [dim]#{record.exchange:<3}[/dim] " if record.exchange is not None else "      "
    if facts:
        line += f"[bold]{escape(facts)}[/bold]  "
    if record.low_confidence:
        why = ",".join(record.reasons) or "low confidence"
        line += f"[yellow]? {text} [dim]({escape(why)}, logprob {record.avg_logprob:.2f})[/dim][/yellow]"
    else:
        line += text
    readback = record.readback
    if readback and readback.get("status") == "mismatch":
        what = describe_differences(readback.get("differences") or [])
        line += f" [bold red]READBACK MISMATCH: {escape(what)}[/bold red]"
    elif readback:
        line += " [green]readback ok[/green]"
    if record.end_reason in ("max_length", "break"):
        line += f" [dim]<{record.end_reason}>[/dim]"
    if record.behind:
        line += f" [red][{record.behind} behind][/red]"
    return line


class ConsoleView:
    """Prints each record as it arrives and the summary at the end (a :class:`Sink`)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=True, highlight=False)

    def header(self, source: str, model: str, engine: str, vad: str) -> None:
        """Say what is being listened to, before the first transmission."""
        self.console.print(f"[bold]Listening[/bold] to {escape(source)} - model {escape(model)} ({engine}), VAD {vad}. "
                           "Ctrl-C stops (the transmission in progress is still transcribed).")

    def write(self, record: LiveRecord, transmission: Transmission) -> None:
        self.console.print(format_record(record))

    def close(self) -> None:
        """Nothing to release (the summary is printed by :meth:`summary`)."""

    def summary(self, s: LiveSummary, jsonl: str | None = None) -> None:
        """Print the totals of the session."""
        hours = s.audio_s / 3600
        line = (f"[bold]{s.transmissions}[/bold] transmissions ({s.low_confidence} low-confidence) in "
                f"{s.audio_s:.1f} s of audio ({hours:.3f} h); latency mean {s.mean_latency_s:.2f} s, "
                f"p95 {s.p95_latency_s:.2f} s; real-time factor {s.real_time_factor:.3f}; "
                f"max lag {s.max_behind} transmissions / {s.max_wait_s:.1f} s")
        if s.speculative_hits or s.speculative_wasted:
            line += f"; {s.speculative_hits} decoded during the closing pause ({s.speculative_wasted} early decodes discarded)"
        if s.ignored_bursts:
            line += f"; {s.ignored_bursts} short bursts ignored"
        if s.breaks:
            line += f"; stream dropped {s.breaks} time(s)"
        if s.readbacks:
            line += f"; {s.readbacks} readbacks checked"
            line += f", [bold red]{s.readback_mismatches} mismatches[/bold red]" if s.readback_mismatches else ", all ok"
        if s.unanswered:
            line += f"; {s.unanswered} instructions without a readback heard"
        if s.untranscribed:
            line += f"; [red]{s.untranscribed} transmissions left untranscribed (second Ctrl-C)[/red]"
        if s.interrupted:
            line += " (stopped)"
        self.console.print(line + ".")
        if jsonl:
            self.console.print(f"Transcripts appended to {escape(jsonl)}")
