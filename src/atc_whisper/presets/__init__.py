"""Named settings presets shipped with the package: ``--preset NAME`` on every command.

A preset is a partial ``atc_whisper.toml`` in this folder. It is applied over the workspace's
config file and under ``--config``, ``--set`` and a command's own options, so
``atc-whisper run --preset prototype`` reproduces the prototype's literal run in any
workspace, and a single value can still be changed on top of it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent


def available_presets() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def preset_path(name: str) -> Path:
    """The TOML file of preset ``name``.

    Raises:
        ConfigError: No preset has that name (the message lists them).
    """
    path = PRESETS_DIR / f"{name.strip()}.toml"
    if not name.strip() or "/" in name or not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; available presets: {', '.join(available_presets())}.")
    return path
