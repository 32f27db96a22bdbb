"""The subpackages depend one way: pyproject's import-linter layers contract holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "bink_python"


def _layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["type"] == "layers"
    return [name.strip() for layer in contract["layers"] for name in layer.split("|")]


def test_every_subpackage_is_in_a_layer() -> None:
    """A new subpackage cannot escape the contract by not being named in it."""
    on_disk = {f"bink_python.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}
    assert set(_layers()) == on_disk


def test_imports_follow_the_layers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True)
    assert code == 0, capsys.readouterr().out
