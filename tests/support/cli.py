"""Running the command-line tool as a user does, from the integration tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: The CLI of this checkout, run with the test's interpreter.
CLI = [sys.executable, "-m", "bink_python"]


def run_ok(cmd: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; assert it exits 0 (the tails of its output in the message)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc  # type: ignore[no-any-return]


def fast_build(config: Path, output: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``bink-python build --profile fast --no-verify --json`` of ``config`` into ``output``."""
    argv = ["build", "--config", str(config), "--profile", "fast", "--output", str(output)]
    return run_ok([*CLI, *argv, "--no-verify", "--json"], env)
