"""Every command has help text, reached through the real entry point."""

from __future__ import annotations

import pytest

from atc_whisper.cli import cli


def _all_commands(group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _all_commands(command, (*prefix, name))


def test_top_level_help(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    assert "init" in result.stdout


@pytest.mark.parametrize("command", sorted(_all_commands(cli)), ids=" ".join)
def test_every_command_has_help(command, run_cli):
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    body = result.stdout.split("Usage:", 1)[1]
    assert len(body.strip().splitlines()) > 2


def test_pcm_options_offer_what_the_pcm_source_reads():
    """live and serve share one --rate/--format/--channels set; its formats are the source's."""
    from atc_whisper.audio.io import SAMPLE_RATE
    from atc_whisper.cli.common import PCM_FORMATS
    from atc_whisper.live.sources import PCM_FORMATS as SOURCE_FORMATS

    assert set(PCM_FORMATS) == set(SOURCE_FORMATS)
    for name in ("live", "serve"):
        options = {p.name: p for p in cli.commands[name].params}
        assert options["rate"].default == SAMPLE_RATE and options["fmt"].default == "s16le"
        assert list(options["fmt"].type.choices) == list(PCM_FORMATS)
