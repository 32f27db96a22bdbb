"""Running host tools: one place that starts, times out, stops and reports children.

Every external command the tool runs goes through :func:`spawn` (or :func:`run`,
which raises on failure):

* each child starts in its **own session and process group**, so a Ctrl-C on the
  terminal reaches only us, and we decide how children stop;
* each command has a **timeout** by kind (:data:`TIMEOUTS`, overridable with
  ``BINK_PYTHON_TIMEOUT_<KIND>`` in seconds); a command that overruns is stopped and
  the error keeps the tail of its output;
* every live child is **registered**: :func:`stop_all` signals each child's process
  group and every descendant (SIGTERM, then SIGKILL after a grace period), and
  :func:`cancelled` makes every later :func:`spawn` refuse to start, so stages
  running in parallel threads unwind at their next command;
* a ``KeyboardInterrupt`` (Ctrl-C, or SIGTERM mapped to it by ``__main__``) raised
  while waiting for a child stops that child's group before it propagates.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import BinkError, ToolError

#: Default time limits (seconds) per kind of external command. ``BINK_PYTHON_TIMEOUT_<KIND>``
#: (kind upper-cased, ``-`` as ``_``) overrides one; ``0`` means no limit.
TIMEOUTS: dict[str, float] = {
    "mmdebstrap": 3600.0,  # a base or a build root: downloads and maintainer scripts
    "compile": 4 * 3600.0,  # configure + make (PGO+LTO under emulation is slow)
    "buildah": 600.0,  # one buildah subcommand (from, mount, commit, rm...)
    "probe": 600.0,  # one command verify runs inside an image (arm64 under qemu)
    "skopeo": 1800.0,  # one copy/inspect against a registry or an archive
    "mount": 60.0,  # mount / umount
    "compress": 1800.0,  # one layer gzipped in a child process
    "git": 30.0,
    "default": 3600.0,
}

#: Seconds between SIGTERM and SIGKILL when stopping a child's process group.
STOP_GRACE = 5.0

#: Lines of output kept in an error message.
TAIL_LINES = 25


class Cancelled(BinkError):
    """A command was not started (or was stopped) because the build is being cancelled."""

    exit_code = 130


#: ``$BINK_PYTHON_TIMEOUT_<KIND>`` as given, by KIND (the settings' ``timeouts``).
_overrides: dict[str, str] = {}


def set_timeouts(timeouts: Iterable[tuple[str, str]]) -> None:
    """Make the settings' time limits (KIND, seconds as given) the ones every later
    command runs under; each is checked when a command of its kind runs."""
    _overrides.clear()
    _overrides.update(timeouts)


def timeout_for(kind: str) -> float | None:
    """The time limit of one command of ``kind`` (None: unlimited)."""
    suffix = kind.upper().replace("-", "_")
    name = "BINK_PYTHON_TIMEOUT_" + suffix
    raw = _overrides.get(suffix)
    if raw is not None and raw.strip():
        try:
            value = float(raw)
        except ValueError:
            raise ToolError(f"{name}={raw!r}: expected a number of seconds") from None
        if value < 0:
            raise ToolError(f"{name}={raw!r}: expected a number of seconds >= 0")
    else:
        value = TIMEOUTS.get(kind, TIMEOUTS["default"])
    return value if value > 0 else None


def require_tool(name: str, package: str | None = None) -> str:
    """The absolute path of a host tool, or a ToolError saying what to install."""
    found = shutil.which(name)
    if not found:
        pkg = package or name
        raise ToolError(f"{name} not found on PATH: install it (apt-get install {pkg})")
    return found


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# -- the registry of live children ---------------------------------------------------

_lock = threading.Lock()
_live: dict[int, subprocess.Popen[bytes]] = {}
_cancel = threading.Event()


def cancel() -> None:
    """Refuse every later command and stop every running one (all threads)."""
    _cancel.set()
    stop_all()


def cancelled() -> bool:
    return _cancel.is_set()


def reset_cancel() -> None:
    """Accept commands again (after a cancelled parallel section has unwound)."""
    _cancel.clear()


def check_cancelled() -> None:
    """Raise :class:`Cancelled` when the build is being cancelled (for long Python loops)."""
    if _cancel.is_set():
        raise Cancelled("cancelled: another stage failed or the build was interrupted")


def live_children() -> list[int]:
    """Process ids of the children started here that have not been reaped."""
    with _lock:
        return sorted(_live)


def _children_map() -> dict[int, list[int]]:
    """ppid -> child pids, from /proc."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 1:
            out.setdefault(int(rest[1]), []).append(int(entry))
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children, grandchildren...), from /proc."""
    tree = _children_map()
    found: list[int] = []
    stack = list(tree.get(pid, []))
    while stack:
        cur = stack.pop()
        found.append(cur)
        stack.extend(tree.get(cur, []))
    return found


def _signal_tree(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` and every descendant (even in other groups)."""
    targets = descendants(pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    for target in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)


def _stop(popen: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """Stop a child and its descendants: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if popen.poll() is None:
        _signal_tree(popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and popen.poll() is None:
            time.sleep(0.05)
    # the leader may be gone while its group or descendants linger: kill whatever is left
    _signal_tree(popen.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout=grace)


def stop_all(grace: float = STOP_GRACE) -> None:
    """Stop every registered child's process group (and descendants), in parallel."""
    with _lock:
        popens = list(_live.values())
    threads = [threading.Thread(target=_stop, args=(p, grace), daemon=True) for p in popens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


#: True while the main thread starts a child and registers it (spawn): a Ctrl-C or
#: SIGTERM that lands there is held (``_held``) and raised once the child is guarded, so
#: it cannot leave the child running. Signal handlers run in the main thread only.
_starting = False
_held = False


def hold_interrupt() -> bool:
    """For the signal handler: True when the main thread is starting a child, in which case
    the interrupt is held and :func:`spawn` raises it once the child can be stopped."""
    global _held
    if _starting:
        _held = True
    return _starting


def _guarded(main: bool) -> None:
    """The child is registered (or was never started): raise a held interrupt."""
    global _starting, _held
    if not main:
        return
    _starting = False
    if _held:
        _held = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def _registered(popen: subprocess.Popen[bytes]) -> Iterator[None]:
    with _lock:
        _live[popen.pid] = popen
    try:
        yield
    finally:
        with _lock:
            _live.pop(popen.pid, None)


# -- running one command ---------------------------------------------------------------


@dataclass(frozen=True)
class Completed:
    """The outcome of a command: exit status (``-1`` when it timed out) and its output."""

    argv: tuple[str, ...]
    returncode: int
    out: bytes
    err: bytes
    timed_out: bool = False
    timeout: float | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def stdout(self) -> str:
        return self.out.decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.decode(errors="replace")


def spawn(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    kind: str = "default",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_bytes: bytes | None = None,
    stdout: IO[bytes] | int | None = subprocess.PIPE,
    stderr: IO[bytes] | int | None = subprocess.PIPE,
    timeout: float | None = None,
    keep_env: bool = True,
    cleanup: bool = False,
) -> Completed:
    """Run ``cmd`` in its own process group; never raises for a failing or slow command.

    ``timeout`` defaults to :func:`timeout_for` ``(kind)``. On timeout the child's group
    is stopped and the output it produced so far is returned with ``timed_out``. An
    exception while waiting (Ctrl-C, SIGTERM) stops the group before it propagates.
    A ``cleanup`` command (unmount, remove a container) still runs while the build is
    being cancelled; any other refuses to start.
    """
    if not cleanup:
        check_cancelled()
    argv = tuple(os.fspath(c) for c in cmd)
    limit = timeout if timeout is not None else timeout_for(kind)
    # a child inherits this process's environment, the one read of it outside settings
    full_env = dict(os.environ) if keep_env else {}
    if env:
        full_env.update(env)
    global _starting
    main = threading.current_thread() is threading.main_thread()
    if main:
        _starting = True
    try:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except BaseException as exc:
        _guarded(main)  # a held interrupt wins over the start's own error
        if isinstance(exc, FileNotFoundError):
            raise ToolError(f"{argv[0]} not found: install it") from exc
        raise
    with _registered(popen):
        try:
            _guarded(main)
            # a cancel() racing with the start above must not miss this child
            if _cancel.is_set() and not cleanup:
                _stop(popen)
            out, err = popen.communicate(input_bytes, timeout=limit)
        except subprocess.TimeoutExpired:
            _stop(popen)
            out, err = popen.communicate()
            return Completed(argv, -1, out or b"", err or b"", True, limit)
        except BaseException:
            _stop(popen)
            raise
    if _cancel.is_set() and popen.returncode != 0 and not cleanup:
        raise Cancelled(f"{argv[0]} stopped: the build is being cancelled")
    return Completed(argv, popen.returncode, out or b"", err or b"", False, limit)


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
    kind: str = "default",
    cleanup: bool = False,
) -> Completed:
    """Run a command; on failure or timeout raise ``error`` with the last lines of its output.

    When ``log`` is given, stdout and stderr are appended to it (full log kept)
    and its path is named in the error.
    """
    argv = [os.fspath(c) for c in cmd]
    label = what or argv[0]
    data = input_text.encode() if input_text is not None else None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as handle:
            handle.write(f"$ {' '.join(argv)}\n".encode())
            handle.flush()
            done = spawn(
                argv,
                kind=kind,
                env=env,
                cwd=cwd,
                input_bytes=data,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                cleanup=cleanup,
            )
        if not done.ok:
            last = tail(log.read_text(errors="replace"))
            raise error(f"{label} {_failure(done, kind)}; full log: {log}\n{last}")
        return done
    done = spawn(
        argv, kind=kind, env=env, cwd=cwd, input_bytes=data, timeout=timeout, cleanup=cleanup
    )
    if not done.ok:
        out = tail(done.stdout + done.stderr)
        raise error(f"{label} {_failure(done, kind)}:\n{out}")
    return done


def _failure(done: Completed, kind: str) -> str:
    if done.timed_out:
        env = "BINK_PYTHON_TIMEOUT_" + kind.upper().replace("-", "_")
        return f"timed out after {done.timeout:.0f}s (the limit is {env})"
    return f"failed (exit {done.returncode})"
