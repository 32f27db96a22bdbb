"""Children, timeouts, cancellation and error mapping, with real processes and real signals.

Each test would fail against the previous behaviour: children in the caller's process
group, no timeout, a failing stage waiting for its siblings' running commands, SIGTERM
leaving children behind, an OSError or a bug printing a traceback, a cleanup error
replacing the real one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bink_python.errors import BuildError, ToolError, cleanup
from bink_python.host import proc
from bink_python.host.parallel import run_parallel
from bink_python.settings import Settings


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def _wait_gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _pids_file(tmp_path: Path) -> Path:
    return tmp_path / "pids"


def _tree_script(pids: Path) -> list[str]:
    """A shell that starts a grandchild in a *new session* and records both pids."""
    return [
        "sh",
        "-c",
        f"setsid sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; echo started; sleep 300",
    ]


def _recorded(pids: Path) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pids.exists() and len(pids.read_text().split()) >= 2:
            return [int(p) for p in pids.read_text().split()]
        time.sleep(0.05)
    raise AssertionError("the child did not start")


def test_child_runs_in_its_own_process_group(tmp_path: Path) -> None:
    done = proc.spawn(["sh", "-c", "ps -o pgid= -p $$; ps -o sid= -p $$; echo $$"])
    pgid, sid, pid = (int(x) for x in done.stdout.split())
    assert pgid == pid == sid  # leader of its own session and group
    assert pgid != os.getpgrp()


def test_timeout_stops_the_whole_tree_and_keeps_the_output(tmp_path: Path) -> None:
    pids = _pids_file(tmp_path)
    start = time.monotonic()
    with pytest.raises(BuildError) as info:
        proc.run(_tree_script(pids), error=BuildError, what="slow tool", timeout=1.0)
    assert time.monotonic() - start < 15
    message = str(info.value)
    assert "slow tool timed out after 1s" in message
    assert "started" in message  # the output tail survives the timeout
    assert _wait_gone(_recorded(pids)) == []  # grandchild in another session too


def test_timeout_with_a_log_names_the_log_and_its_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    with pytest.raises(ToolError, match=r"timed out after 1s.*full log: .*x\.log\n.*tick"):
        proc.run(["sh", "-c", "echo tick; sleep 30"], log=log, timeout=1.0)


def test_timeout_per_kind_from_the_environment() -> None:
    def given(value: str) -> None:
        environ = {"BINK_PYTHON_TIMEOUT_BUILDAH": value}
        proc.set_timeouts(Settings.resolve(environ=environ).timeouts)

    try:
        assert proc.timeout_for("buildah") == proc.TIMEOUTS["buildah"]
        assert proc.timeout_for("nosuchkind") == proc.TIMEOUTS["default"]
        given("0.5")
        assert proc.timeout_for("buildah") == 0.5
        assert proc.timeout_for("probe") == proc.TIMEOUTS["probe"]
        done = proc.spawn(["sleep", "30"], kind="buildah")
        assert done.timed_out and done.returncode == -1
        given("0")
        assert proc.timeout_for("buildah") is None
        given("soon")
        with pytest.raises(ToolError, match="BINK_PYTHON_TIMEOUT_BUILDAH"):
            proc.timeout_for("buildah")
    finally:
        proc.set_timeouts(())


def test_interrupt_while_waiting_stops_the_child_tree(tmp_path: Path) -> None:
    pids = _pids_file(tmp_path)
    main = threading.main_thread().ident
    assert main == threading.get_ident()

    def interrupt() -> None:
        _recorded(pids)
        signal.pthread_kill(main, signal.SIGUSR1)

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            proc.spawn(_tree_script(pids))
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert _wait_gone(_recorded(pids)) == []
    assert proc.live_children() == []


def test_a_failing_stage_stops_the_running_ones_and_waits_for_their_cleanup(
    tmp_path: Path,
) -> None:
    pids = _pids_file(tmp_path)
    cleaned = threading.Event()

    def long_stage() -> str:
        try:
            proc.run(_tree_script(pids), error=BuildError, what="make")
        finally:
            time.sleep(0.3)  # a cleanup that takes a moment (rm -rf of a work dir)
            cleaned.set()
        return "never"

    def failing_stage() -> str:
        _recorded(pids)
        raise BuildError("mmdebstrap failed")

    start = time.monotonic()
    with pytest.raises(BuildError, match="mmdebstrap failed"):
        run_parallel(2, {"runtime": long_stage, "base": failing_stage})
    assert time.monotonic() - start < 20  # not the 300 s of the running command
    assert cleaned.is_set()  # the running stage unwound before the error was raised
    assert _wait_gone(_recorded(pids)) == []
    assert not proc.cancelled()  # the next build may run commands again
    assert proc.spawn(["true"]).ok


def test_no_command_starts_after_cancel() -> None:
    proc.cancel()
    try:
        with pytest.raises(proc.Cancelled):
            proc.spawn(["true"])
        assert proc.spawn(["true"], cleanup=True).ok  # unmounts and rm still run
    finally:
        proc.reset_cancel()


def test_cleanup_failure_never_replaces_the_real_error() -> None:
    def broken() -> None:
        raise OSError("umount: target is busy")

    with (
        pytest.raises(BuildError, match="compile failed") as info,
        cleanup(broken, "unmounting the work dir"),
    ):
        raise BuildError("compile failed")
    assert "cleanup also failed (unmounting the work dir)" in "".join(info.value.__notes__)
    # with no error, the cleanup's own is raised
    with pytest.raises(OSError, match="busy"), cleanup(broken, "unmounting the work dir"):
        pass


# -- the entry point, in a real process --------------------------------------------------

_DRIVER = textwrap.dedent(
    """
    import os, signal, sys, errno, time
    from pathlib import Path
    import bink_python.cli.family as cli
    from bink_python.host import proc
    from bink_python.__main__ import main

    # Ctrl-C reaches the driver as it reaches a command in a terminal, even when this test
    # run inherited SIGINT ignored (a background job of a non-interactive shell), which
    # the CLI leaves ignored, as it should
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mode, marker = sys.argv[1], Path(sys.argv[2])
    if mode == "startrace":
        import subprocess

        class RacingPopen(subprocess.Popen):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                # a Ctrl-C landing after the child started, before spawn guards it
                os.kill(os.getpid(), signal.SIGINT)

        subprocess.Popen = RacingPopen

    def handler(args):
        if mode == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device", "/cache/x")
        if mode == "bug":
            return {}["missing"]
        try:
            proc.run(["sh", "-c", f"echo $$ > {marker}.child; exec sleep 300"])
        finally:
            time.sleep(0.2)
            marker.write_text("cleaned")
        return 0

    cli._cmd_matrix = handler  # the handler `matrix` dispatches to
    sys.exit(main(["matrix", *sys.argv[3:]]))
    """
)


def _driver(tmp_path: Path, mode: str, *extra: str) -> subprocess.Popen[str]:
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(tmp_path / "marker"), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_stop_children_and_run_cleanups(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    driver = _driver(tmp_path, "wait")
    child_file = tmp_path / "marker.child"
    deadline = time.monotonic() + 20
    while not (child_file.exists() and child_file.read_text().strip()):
        assert time.monotonic() < deadline, driver.communicate()
        time.sleep(0.05)
    child = int(child_file.read_text())
    driver.send_signal(sig)
    _, err = driver.communicate(timeout=30)
    assert driver.returncode == code, err
    assert (tmp_path / "marker").read_text() == "cleaned"
    assert _wait_gone([child], 2) == []
    assert "Traceback" not in err


def test_ctrl_c_between_starting_a_child_and_guarding_it_still_stops_the_child(
    tmp_path: Path,
) -> None:
    driver = _driver(tmp_path, "startrace")
    child_file = tmp_path / "marker.child"
    try:
        _, err = driver.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        # the orphaned child holds the driver's pipes open: stop it, then fail
        if child_file.exists() and child_file.read_text().strip():
            os.kill(int(child_file.read_text()), signal.SIGKILL)
        driver.kill()
        driver.communicate()
        pytest.fail("the child started before the Ctrl-C outlived the driver")
    assert driver.returncode == 130, err
    assert (tmp_path / "marker").read_text() == "cleaned"
    if child_file.exists() and child_file.read_text().strip():
        assert _wait_gone([int(child_file.read_text())], 2) == []
    assert "Traceback" not in err


def test_oserror_is_one_line_with_the_host_exit_code(tmp_path: Path) -> None:
    driver = _driver(tmp_path, "oserror")
    _, err = driver.communicate(timeout=60)
    assert err.strip().splitlines() == [
        "error: disk full (/cache/x): free space (e.g. `bink-python cache prune`) and rerun"
    ]
    assert driver.returncode == 10


def test_unexpected_exception_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    driver = _driver(tmp_path, "bug")
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 70
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: internal error (KeyError: 'missing')")
    driver = _driver(tmp_path, "bug", "--debug")
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 70
    assert "Traceback (most recent call last)" in err


def test_buildah_storage_of_a_killed_verify_is_removed_by_the_next_session(
    tmp_path: Path,
) -> None:
    from bink_python.verify.imagerun import remove_dead_sessions

    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f"bink-buildah-{gone.pid}-0a1b2c"
    (dead / "storage").mkdir(parents=True)
    mine = tmp_path / f"bink-buildah-{os.getpid()}-0a1b2d"
    mine.mkdir()
    assert remove_dead_sessions(tmp_path) == [dead]
    assert not dead.exists() and mine.exists()


def test_a_signal_while_the_finished_command_exits_keeps_its_exit_code(tmp_path: Path) -> None:
    """SIGTERM after the work is done (while Python shuts down) neither kills the process
    by the default action (exit -15, the code lost) nor raises into the shutdown."""
    script = textwrap.dedent(
        f"""
        import atexit, os, signal, sys, time
        from bink_python.__main__ import main

        def late_signal() -> None:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.3)  # room for a handler to run, or the default action to kill

        atexit.register(late_signal)
        sys.argv = ["bink-python", "cache", "du", "--cache-dir", {str(tmp_path / "c")!r}]
        sys.exit(main())
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("KIND")


#: Modules the program loads, in order: a signal is sent once each has been imported.
LOADING = ("bink_python.host.proc", "bink_python.family", "bink_python.image", "bink_python.cli")


@pytest.mark.parametrize("how", ["module", "script"])
def test_a_signal_while_the_program_loads_never_prints_a_traceback(how: str) -> None:
    """A Ctrl-C or SIGTERM while the program's modules load (seen as they load through
    PYTHONPROFILEIMPORTTIME, so the signal lands mid-import, not by luck of timing) ends
    the program as interrupted: exit 130 or 143, one line, no traceback."""
    config = Path(__file__).resolve().parents[2] / "examples" / "offline" / "images.toml"
    program = (
        [sys.executable, "-m", "bink_python"]
        if how == "module"
        else [str(Path(sys.executable).parent / "bink-python")]
    )
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    for module in LOADING:
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            child = subprocess.Popen(
                [*program, "matrix", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                # a background job inherits SIGINT ignored; a terminal's command does not
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
            assert child.stderr is not None
            for line in child.stderr:
                if line.startswith("import time:") and line.rstrip().endswith(module):
                    break
            child.send_signal(sig)
            rest = child.stderr.read()
            child.wait(timeout=60)
            said = [x for x in rest.splitlines() if not x.startswith("import time:")]
            assert "Traceback" not in rest, (module, sig.name, rest[-2000:])
            assert child.returncode == code, (module, sig.name, child.returncode, said)
            assert said == ["interrupted" if sig == signal.SIGINT else "stopped by SIGTERM"]
