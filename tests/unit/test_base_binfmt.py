"""ensure_binfmt against fake binfmt_misc directories (the real one is used in integration)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bink_python.errors import ToolError
from bink_python.host.arch import host_arch
from bink_python.host.binfmt import ensure_binfmt
from tests.support.tools import requires_tool

FOREIGN = "arm64" if host_arch() == "amd64" else "amd64"
QEMU = "aarch64" if FOREIGN == "arm64" else "x86_64"


def _entry(binfmt: Path, name: str, *, enabled: bool, flags: str) -> Path:
    binfmt.mkdir(exist_ok=True)
    (binfmt / "register").touch()
    (binfmt / "status").write_text("enabled\n")
    path = binfmt / name
    path.write_text(
        f"{'enabled' if enabled else 'disabled'}\n"
        f"interpreter /usr/bin/qemu-{QEMU}-static\nflags: {flags}\noffset 0\n"
    )
    return path


def test_host_arch_needs_nothing(tmp_path: Path) -> None:
    ensure_binfmt(host_arch(), binfmt_dir=tmp_path / "missing")


def test_unknown_arch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="unknown architecture s390x"):
        ensure_binfmt("s390x", binfmt_dir=tmp_path)


def test_registered_entry_with_fix_binary_flag_is_accepted(tmp_path: Path) -> None:
    _entry(tmp_path, f"qemu-{QEMU}", enabled=True, flags="OCF")
    ensure_binfmt(FOREIGN, binfmt_dir=tmp_path)


def test_entry_under_another_name_is_found_by_interpreter(tmp_path: Path) -> None:
    _entry(tmp_path, f"{QEMU}-custom", enabled=True, flags="F")
    ensure_binfmt(FOREIGN, binfmt_dir=tmp_path)


def test_entry_without_fix_binary_flag_is_an_actionable_error(tmp_path: Path) -> None:
    _entry(tmp_path, f"qemu-{QEMU}", enabled=True, flags="OC")
    with pytest.raises(ToolError, match=r"lacks the F \(fix binary\) flag.*update-binfmts"):
        ensure_binfmt(FOREIGN, binfmt_dir=tmp_path)


def test_registration_that_does_not_take_effect_is_reported(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("registering needs root")
    requires_tool(f"qemu-{QEMU}-static", "qemu-user-static")
    (tmp_path / "register").touch()  # a plain file: the "kernel" creates no entry
    with pytest.raises(ToolError, match="did not take effect: install qemu-user-static"):
        ensure_binfmt(FOREIGN, binfmt_dir=tmp_path)
    assert f":qemu-{QEMU}:M::" in (tmp_path / "register").read_text()
    assert (tmp_path / "register").read_text().endswith(":OCF")
