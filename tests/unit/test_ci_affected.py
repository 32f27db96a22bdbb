"""The pull request's build matrix: the images a change can alter, and only those."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bink_python.__main__ import main
from bink_python.cli.affected import affected
from bink_python.family.config import load_family

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "offline"
TODAY = dt.date(2026, 12, 1)
EVERY = [
    ("3.13", "amd64"),
    ("3.13", "arm64"),
    ("3.13-distroless", "amd64"),
    ("3.13-distroless", "arm64"),
]


def _state() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    family = load_family(EXAMPLE / "images.toml")
    toml = tomllib.loads((EXAMPLE / "images.toml").read_text())
    lock = json.loads((EXAMPLE / "images.lock").read_text())
    return family, toml, lock


def _changed(lock: dict[str, Any], name: str) -> dict[str, Any]:
    new: dict[str, Any] = json.loads(json.dumps(lock))
    new["artifacts"][name]["sha256"] = "f" * 64
    new["artifacts"][name]["pinned"] = True
    return new


def test_an_artifact_of_the_lock_alters_only_the_images_that_use_it() -> None:
    family, toml, lock = _state()
    await_amd64 = _changed(lock, "linkerd-await:0.3.3:amd64")
    changed = ["images.lock"]
    assert affected(family, changed, toml, toml, lock, await_amd64, TODAY) == [
        ("3.13", "amd64"),
        ("3.13-distroless", "amd64"),
    ]
    cpython = _changed(lock, "cpython:3.13.15")
    assert affected(family, changed, toml, toml, lock, cpython, TODAY) == EVERY


@pytest.mark.parametrize(
    "path",
    ["src/bink_python/runtime/plan.py", "src/bink_python/verify/inimage.py", "pyproject.toml"],
)
def test_the_recipe_base_or_verify_code_alters_every_image(path: str) -> None:
    family, toml, lock = _state()
    assert affected(family, [path], toml, toml, lock, lock, TODAY) == EVERY


@pytest.mark.parametrize("path", ["README.md", "docs/architecture.md", "tests/unit/x.py"])
def test_documents_and_tests_alter_no_image(path: str) -> None:
    family, toml, lock = _state()
    assert affected(family, [path], toml, toml, lock, lock, TODAY) == []


def test_images_toml_a_tag_table_or_the_family_table() -> None:
    family, toml, lock = _state()
    edited = json.loads(json.dumps(toml))
    edited["tag"][1]["note"] = "changed"  # the second [[tag]] table
    name = edited["tag"][1]["name"]
    assert affected(family, ["images.toml"], toml, edited, lock, lock, TODAY) == [
        (name, "amd64"),
        (name, "arm64"),
    ]
    family_edit = json.loads(json.dumps(toml))
    family_edit["family"]["vendor"] = "Someone"
    assert affected(family, ["images.toml"], toml, family_edit, lock, lock, TODAY) == EVERY


def _git(repo: Path, *argv: str) -> None:
    subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True)


def test_the_command_reads_the_change_from_git(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINK_PYTHON_TODAY", TODAY.isoformat())
    for name in ("images.toml", "images.lock"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    (tmp_path / "README.md").write_text("x\n")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(
        tmp_path,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qam",
        "x",
        "--allow-empty",
    )
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    _git(tmp_path, "checkout", "-qb", "change")
    (tmp_path / "README.md").write_text("y\n")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "readme")
    config = ["--config", str(tmp_path / "images.toml")]
    assert main(["ci", "affected", "--base", "main", *config]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "any=false"
    lock = json.loads((tmp_path / "images.lock").read_text())
    (tmp_path / "images.lock").write_text(json.dumps(_changed(lock, "linkerd-await:0.3.3:arm64")))
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "pin")
    assert main(["ci", "affected", "--base", "main", *config]) == 0
    images = json.loads(capsys.readouterr().out.splitlines()[0].split("=", 1)[1])["include"]
    assert [(e["tag"], e["arch"], e["runner"]) for e in images] == [
        ("3.13", "arm64", "ubuntu-24.04-arm"),
        ("3.13-distroless", "arm64", "ubuntu-24.04-arm"),
    ]
