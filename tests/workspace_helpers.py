"""Test workspaces that share the session's CTranslate2 export of tiny.en (the ``ct2_cache`` fixture)."""

from __future__ import annotations

from pathlib import Path

from atc_whisper.workspace import Workspace


def ct2_workspace(root: Path, ct2_cache: Path) -> Workspace:
    """A new workspace whose CTranslate2 cache links to the session's (no second export)."""
    ws = Workspace.at(root)
    ws.create()
    ws.models_dir.mkdir(parents=True, exist_ok=True)
    (ws.models_dir / "ct2").symlink_to(ct2_cache, target_is_directory=True)
    return ws
