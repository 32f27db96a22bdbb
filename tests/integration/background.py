"""The suite's background builder: its longest independent builds, made beside the tests.

Most of a cold run is spent compiling and bootstrapping, and much of the rest runs one
single-threaded process at a time (a probe under qemu, dpkg, a layer's compression),
leaving one of the two cores idle. At the start of an integration session
:func:`running` launches this module, at the lowest CPU priority, to fill that core with
the builds that no early test needs (:data:`JOBS`: the release runtime, the simulated
Ubuntu family, the diff tests' second CPython). Each is built by the very function its
fixture calls, into the same test
store, so the fixture finds a cache hit, or waits on the store's builder lock while the
entry is being made here; a build that fails here is simply built (and its error
reported) by the fixture. The tests that use them run last (``tests/conftest.py``).

Run as ``python -m tests.integration.background JOB...`` with ``BINK_PYTHON_TEST_CACHE``
set; SIGTERM stops it as it stops the tool (children stopped, partial entries removed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

from bink_python.host import proc
from bink_python.host.distro import get_distro
from bink_python.host.progress import Progress
from bink_python.runtime.buildroot import BuildRootSpec, ensure_buildroot
from bink_python.store.store import Store
from tests.support.children import die_with_parent
from tests.support.machine import machine_mirrors
from tests.support.runtimes import build_test_runtime
from tests.support.ubuntu_archive import build_ubuntu_family, serving

from .fixtures_diff import OTHER_SHA256, OTHER_VERSION

REPO = Path(__file__).resolve().parents[2]


def _release_runtime(cache_root: Path, work: Path) -> None:
    build_test_runtime(cache_root, "amd64", "release", Progress(quiet=True))


def _diff_runtime(cache_root: Path, work: Path) -> None:
    quiet = Progress(quiet=True)
    build_test_runtime(
        cache_root, "amd64", "fast", quiet, version=OTHER_VERSION, sha256=OTHER_SHA256
    )


def _ubuntu_family(cache_root: Path, work: Path) -> None:
    with serving(cache_root / "ubuntu-sim" / "archive") as archive:
        build_ubuntu_family(archive, cache_root, work)


def _debian_buildroot(cache_root: Path) -> None:
    ensure_buildroot(
        BuildRootSpec(get_distro("debian", "13"), "amd64"),
        Store(cache_root / "store"),
        mirrors=machine_mirrors(),
    )


@dataclass(frozen=True)
class Job:
    build: Callable[[Path, Path], None]
    module: str  # the test module whose fixture needs it (its tests run last)
    #: what the job shares with the first tests, made in the foreground before the builder
    #: starts: else the tests would wait on a build running at the lowest priority
    shared: Callable[[Path], None] | None = None


#: In the order they are built: the longest first.
JOBS = {
    "release-runtime": Job(_release_runtime, "test_runtime_release", _debian_buildroot),
    "ubuntu-family": Job(_ubuntu_family, "test_ubuntu_path"),
    "diff-runtime": Job(_diff_runtime, "test_diff", _debian_buildroot),
}

#: The builder's lines of its log, for the session's terminal summary.
REPORT = pytest.StashKey[list[str]]()

#: Seconds a stopped builder has to unwind (stop its children) before SIGKILL.
STOP_GRACE = 60.0


def jobs_for(modules: Sequence[str]) -> list[str]:
    """The jobs whose test modules (basenames) are among ``modules``, in build order."""
    return [name for name, job in JOBS.items() if job.module in modules]


@contextlib.contextmanager
def running(cache_root: Path, jobs: Sequence[str], log: Path) -> Iterator[None]:
    """Run the builder for ``jobs`` while the block runs; stop it (and wait) afterwards."""
    if not jobs:
        yield
        return
    for shared in dict.fromkeys(JOBS[name].shared for name in jobs):
        if shared is not None:
            shared(cache_root)
    env = dict(os.environ, BINK_PYTHON_TEST_CACHE=str(cache_root))
    with open(log, "ab") as out:
        child = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "tests.integration.background", *jobs],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    try:
        yield
    finally:
        stop(child)


def stop(child: subprocess.Popen[bytes]) -> None:
    """Stop the builder's process group: SIGTERM, then SIGKILL after :data:`STOP_GRACE`."""
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if not proc.hold_interrupt():  # held while a child starts: spawn raises it
        raise KeyboardInterrupt


def main(argv: Sequence[str]) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    cache_root = Path(os.environ["BINK_PYTHON_TEST_CACHE"])
    failed = 0
    for name in argv:
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix=f"bink-background-{name}-") as work:
                JOBS[name].build(cache_root, Path(work))
        except KeyboardInterrupt:
            print(f"background: {name} stopped", flush=True)
            return 143
        except Exception:
            traceback.print_exc()
            print(f"background: {name} FAILED (its fixture builds it)", flush=True)
            failed += 1
            continue
        print(f"background: {name} built in {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
