"""Running host tools: one place that turns failures into clear errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import BinkError, ToolError


def require_tool(name: str, package: str | None = None) -> str:
    """The absolute path of a host tool, or a ToolError saying what to install."""
    found = shutil.which(name)
    if not found:
        pkg = package or name
        raise ToolError(f"{name} not found on PATH: install it (apt-get install {pkg})")
    return found


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    error: type[BinkError] = ToolError,
    what: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    input_text: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise ``error`` with the last lines of its output.

    When ``log`` is given, stdout and stderr are appended to it (full log kept)
    and its path is named in the error.
    """
    argv = [os.fspath(c) for c in cmd]
    label = what or argv[0]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    try:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as handle:
                handle.write(f"$ {' '.join(argv)}\n")
                handle.flush()
                proc = subprocess.run(
                    argv,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env=full_env,
                    cwd=cwd,
                    input=input_text,
                    timeout=timeout,
                    check=False,
                )
            if proc.returncode != 0:
                last = tail(log.read_text(errors="replace"))
                raise error(f"{label} failed (exit {proc.returncode}); full log: {log}\n{last}")
            return proc
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            input=input_text,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolError(f"{argv[0]} not found: install it") from exc
    except subprocess.TimeoutExpired as exc:
        raise error(f"{label} timed out after {timeout}s") from exc
    if proc.returncode != 0:
        out = tail((proc.stdout or "") + (proc.stderr or ""))
        raise error(f"{label} failed (exit {proc.returncode}):\n{out}")
    return proc
