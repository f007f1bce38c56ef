"""The ``atc-whisper`` command line: parse, call the library, print.

Every subcommand lives in a ``*_cmd.py`` module of this package and is found automatically;
each module lists its commands in ``COMMANDS``. Library errors (:class:`AtcWhisperError`)
become one ``Error: ...`` line and exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import cProfile
import importlib
import io
import pkgutil
import pstats
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import AtcWhisperError
from .common import echo_error


def _stop_profile(ctx: click.Context, profiler: cProfile.Profile) -> None:
    profiler.disable()
    workspace = ctx.meta.get("atc_whisper.workspace")
    out = (workspace.profile_path if workspace is not None else Path("profile.out")).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(out))
    buffer = io.StringIO()
    pstats.Stats(str(out), stream=buffer).sort_stats("cumulative").print_stats(20)
    click.echo(buffer.getvalue(), err=True)
    click.echo(f"Profile written to {out} (open with: python -m pstats {out})", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="atc-whisper")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logging.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on the console.")
@click.option("--profile", is_flag=True, help="Run the command under cProfile; writes profile.out in the workspace.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, profile: bool) -> None:
    """ATC Whisper: fine-tune and run Whisper for air-traffic-control radio speech.

    Start with `atc-whisper init`, then `atc-whisper run` for the whole pipeline, or the
    single steps: prepare, import, train, evaluate, transcribe, live, export.
    """
    ctx.meta["atc_whisper.debug"] = debug
    ctx.meta["atc_whisper.quiet"] = quiet
    if profile:
        profiler = cProfile.Profile()
        ctx.call_on_close(lambda: _stop_profile(ctx, profiler))
        profiler.enable()


def _register() -> None:
    package = sys.modules[__name__]
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.endswith("_cmd"):
            module = importlib.import_module(f"{__name__}.{info.name}")
            for command in getattr(module, "COMMANDS", []):
                cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="atc-whisper", standalone_mode=False)
    except click.exceptions.Abort:
        echo_error("interrupted.")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except AtcWhisperError as exc:
        if debug:
            raise
        echo_error(str(exc))
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        echo_error("interrupted; finished work was kept and the command can be run again to resume.")
        return 130
    except Exception as exc:
        if debug:
            raise
        echo_error(f"unexpected {type(exc).__name__}: {exc}. Re-run with --debug for the traceback and report it.")
        return 1
    # Without standalone mode click returns the code of ctx.exit(n) instead of exiting.
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
