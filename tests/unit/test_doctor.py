"""bink-python doctor: missing tools, binfmt states, cache dir, mirror reachability."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bink_python.errors import ToolError
from bink_python.host import doctor
from bink_python.settings import Mirrors
from tests.support.httpserver import refused_url, running

REQUIRED_TOOLS = ("mmdebstrap", "arch-test", "bwrap", "skopeo", "buildah")


def _binfmt(tmp_path: Path, entry: str | None, name: str = "qemu-aarch64") -> Path:
    root = tmp_path / "binfmt_misc"
    root.mkdir(parents=True)
    (root / "status").write_text("enabled\n")
    if entry is not None:
        (root / name).write_text(entry)
    return root


def _entry(interpreter: str, flags: str = "OCF", enabled: bool = True) -> str:
    state = "enabled" if enabled else "disabled"
    return (
        f"{state}\ninterpreter {interpreter}\nflags: {flags}\noffset 0\n"
        "magic 7f454c460201010000000000000000000200b700\n"
    )


def test_stripped_path_reports_every_missing_tool_with_its_package(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    binfmt = _binfmt(tmp_path, _entry(sys.executable))
    findings = doctor.run_doctor(
        path=str(empty),
        cache_dir=tmp_path / "cache",
        machine="x86_64",
        binfmt_dir=binfmt,
        network=False,
        mirror_settings=Mirrors(),
    )
    by_check = {f.check: f for f in findings}
    for tool in REQUIRED_TOOLS:
        assert by_check[f"tool {tool}"].status == doctor.MISSING
        assert by_check[f"tool {tool}"].failed
    assert by_check["tool bwrap"].fix.endswith("install -y --no-install-recommends bubblewrap")
    assert by_check["tool umoci"].status == doctor.WARN
    assert not by_check["tool umoci"].failed
    assert doctor.exit_code(findings) == ToolError.exit_code
    table = doctor.format_table(findings)
    assert "tool mmdebstrap" in table
    assert "apt-get install -y --no-install-recommends mmdebstrap" in table
    assert "5 required check(s) failed" in table


def test_tools_found_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (*REQUIRED_TOOLS, "umoci"):
        exe = bin_dir / tool
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    findings = doctor.check_tools(str(bin_dir))
    assert all(f.status == doctor.OK for f in findings)
    assert findings[0].detail == str(bin_dir / "mmdebstrap")


def test_binfmt_states(tmp_path: Path) -> None:
    check = doctor.check_binfmt
    ok = check("x86_64", _binfmt(tmp_path / "a", _entry(sys.executable)))
    assert ok.status == doctor.OK
    assert ok.check == "binfmt qemu-aarch64"

    unmounted = tmp_path / "none"
    unmounted.mkdir()
    found = check("x86_64", unmounted)
    assert found.failed
    assert "mount -t binfmt_misc" in found.fix

    found = check("x86_64", _binfmt(tmp_path / "b", None))
    assert found.failed
    assert "update-binfmts --enable qemu-aarch64" in found.fix

    found = check("x86_64", _binfmt(tmp_path / "c", _entry(sys.executable, enabled=False)))
    assert found.failed
    assert "disabled" in found.detail

    found = check("x86_64", _binfmt(tmp_path / "d", _entry("/nonexistent/qemu", flags="")))
    assert found.failed
    assert "does not exist" in found.detail

    found = check("x86_64", _binfmt(tmp_path / "e", _entry(sys.executable, flags="OC")))
    assert found.status == doctor.WARN
    assert "F flag" in found.detail

    # an arm64 host needs the x86_64 entry
    arm = check("aarch64", _binfmt(tmp_path / "f", _entry(sys.executable), "qemu-x86_64"))
    assert arm.status == doctor.OK
    assert arm.check == "binfmt qemu-x86_64"


def test_cache_checks(tmp_path: Path) -> None:
    good = doctor.check_cache(tmp_path / "cache", min_free_gib=0)
    assert [f.status for f in good] == [doctor.OK, doctor.OK]

    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    bad = doctor.check_cache(blocker / "cache", min_free_gib=0)
    assert bad[0].failed
    assert "BINK_PYTHON_CACHE" in bad[0].fix

    full = doctor.check_cache(tmp_path / "cache", min_free_gib=1e9)
    assert full[1].status == doctor.WARN
    assert not full[1].failed


def test_mirror_reachable_and_unreachable() -> None:
    with running() as server:
        server.serve("/debian/dists/trixie/InRelease", b"-----BEGIN PGP SIGNED MESSAGE-----\n")
        ok = doctor.check_mirror(Mirrors(build=server.url + "/debian"))
        missing_suite = doctor.check_mirror(Mirrors(build=server.url + "/debian"), suite="forky")
    assert ok.status == doctor.OK
    assert missing_suite.failed
    refused = doctor.check_mirror(Mirrors(build=refused_url() + "/debian"), timeout=2)
    assert refused.failed
    assert "unreachable" in refused.detail


def test_doctor_command_with_stripped_path(tmp_path: Path) -> None:
    """The real command line, as a subprocess whose PATH has none of the tools."""
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PATH"}
    env.update(PATH=str(empty), BINK_PYTHON_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "bink_python", "doctor", "--offline"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == ToolError.exit_code, proc.stderr
    assert re.search(r"^tool mmdebstrap\s+missing\s+not found on PATH", proc.stdout, re.M)
    assert "apt-get install -y --no-install-recommends mmdebstrap" in proc.stdout
    assert "apt-get install -y --no-install-recommends skopeo" in proc.stdout

    proc = subprocess.run(
        [sys.executable, "-m", "bink_python", "doctor", "--offline", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    failed = {f["check"] for f in data["findings"] if f["failed"]}
    assert {f"tool {t}" for t in REQUIRED_TOOLS} <= failed


def test_unsupported_host(tmp_path: Path) -> None:
    assert doctor.check_binfmt("riscv64", tmp_path).failed
