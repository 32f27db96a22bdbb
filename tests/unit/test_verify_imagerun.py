"""Unit tests of imagerun's pure helpers (buildah itself is exercised by integration tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bink_python.verify import imagerun
from bink_python.verify.imagerun import RunResult, relayed


def test_buildah_noise_is_stripped_from_command_output() -> None:
    out = "Traceback...\nImportError: boom\nsubprocess exited with status 1\nError: exit status 1\n"
    assert imagerun._strip_buildah_noise(out) == "Traceback...\nImportError: boom\n"
    assert imagerun._strip_buildah_noise("Python 3.13.15\n") == "Python 3.13.15\n"
    assert imagerun._strip_buildah_noise("Error: exit status 2\n") == ""
    glued = (
        'process failed to start with error: exec: "python3": executable file not found in '
        "$PATHprocess exited with error: exec: not startedsubprocess exited with status 1\n"
    )
    assert imagerun._strip_buildah_noise(glued) == (
        'process failed to start with error: exec: "python3": executable file not found in $PATH\n'
    )


def test_run_result_describe() -> None:
    result = RunResult(("python3", "--version"), 1, "a\nb\nc\n")
    assert result.describe(lines=2) == "$ python3 --version  (exit 1)\nb\nc"
    assert not result.ok
    assert "(timed out)" in RunResult(("x",), -1, "").describe()
    probe = RunResult(("python3", "-c", "import sys\nprint(1)\n"), 0, "1\n")
    assert probe.describe() == "$ python3 -c <program>  (exit 0)\n1"


def test_probe_paths_fit_image_names(tmp_path: Path) -> None:
    # buildah names a pulled oci: image after its path: capitals or "-_" are refused
    assert imagerun._nameable(Path("/tmp/bink-buildah-0a1b2c/bink-probe-abc"))
    assert not imagerun._nameable(Path("/tmp/Upper/x"))
    assert not imagerun._nameable(Path("/tmp/layout-_x"))
    bad = tmp_path / "Not_Nameable-_dir"
    bad.mkdir()
    parent = imagerun._probe_parent(bad)
    assert parent != bad and imagerun._nameable(parent)
    made = imagerun._named_dir(tmp_path, "bink-probe-")
    assert made.is_dir() and made.name.startswith("bink-probe-")
    assert all(c in "0123456789abcdef" for c in made.name.removeprefix("bink-probe-"))


# -- the output relay: a command's output reaches a file, not buildah's relay ---------------


def _relay(tmp_path: Path, *argv: str) -> tuple[int, str]:
    out = tmp_path / "run.out"
    out.touch(mode=0o600)
    code = subprocess.run(relayed(argv, str(out)), check=False, env={"PATH": os.defpath}).returncode
    return code, out.read_text()


def test_relay_puts_stdout_and_stderr_on_the_file_in_order(tmp_path: Path) -> None:
    script = "import sys; print('out', flush=True); print('err', file=sys.stderr); sys.exit(3)"
    code, text = _relay(tmp_path, sys.executable, "-c", script)
    assert (code, text) == (3, "out\nerr\n")


def test_relay_searches_path_like_buildah(tmp_path: Path) -> None:
    assert _relay(tmp_path, "echo", "hello") == (0, "hello\n")


def test_relay_reports_a_missing_command_in_its_output(tmp_path: Path) -> None:
    code, text = _relay(tmp_path, "no-such-command-bink")
    assert (code, text) == (127, "no-such-command-bink: No such file or directory\n")


def test_relay_never_writes_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("kept\n")
    link = tmp_path / "run.out"
    link.symlink_to(target)
    proc = subprocess.run(relayed(["echo", "x"], str(link)), check=False, capture_output=True)
    assert proc.returncode != 0
    assert target.read_text() == "kept\n"
