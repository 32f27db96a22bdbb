"""Shared test configuration.

Expensive artifacts (base root filesystems, compiled CPython runtimes, fetched
tarballs) are built once and cached outside the clone, under
``$BINK_PYTHON_TEST_CACHE`` (default ``/var/tmp/bink-python-test-cache``), so repeated
runs are quick; each session that uses the cache first removes from it what no run
used for :data:`UNUSED_DAYS` days (entries of a recipe or a test that changed) and what
killed runs left behind. Every test under ``tests/integration`` is marked
``integration`` (it runs the real tools); ``-m "not integration"`` runs the unit tests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bink_python.pipeline.housekeeping import inventory, remove, select

from .integration import background

REPO = Path(__file__).resolve().parent.parent
INTEGRATION = REPO / "tests" / "integration"

#: Cache entries no test used for this long are superseded: the suite uses all it keeps.
UNUSED_DAYS = 7


def prune_test_cache(root: Path, *, now: float | None = None) -> list[Path]:
    """Remove what the test cache holds for nobody: entries of its stores unused for
    :data:`UNUSED_DAYS` days, partial entries and build directories of runs that died
    (never one a running build holds), and source tarballs unused as long. Returns what
    went."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    for store in (root / "store", root / "ubuntu-sim" / "store"):
        if not store.is_dir():
            continue
        items = inventory(store)
        doomed = select(items, older_than=UNUSED_DAYS * 86400, max_bytes=None, now=now)
        doomed += [i for i in items if i.kind in ("tmp", "work") and not i.busy]
        for item in dict.fromkeys(doomed):
            if remove(item, store):
                removed.append(item.path)
    sources = root / "sources"
    for path in sorted(sources.iterdir()) if sources.is_dir() else []:
        if now - path.stat().st_mtime >= UNUSED_DAYS * 86400:
            path.unlink()
            removed.append(path)
    return removed


@pytest.fixture(scope="session")
def test_cache_root() -> Path:
    """The persistent cache shared by integration tests (outside the clone), pruned."""
    root = Path(os.environ.get("BINK_PYTHON_TEST_CACHE", "/var/tmp/bink-python-test-cache"))
    root.mkdir(parents=True, exist_ok=True)
    prune_test_cache(root)
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under ``tests/integration`` is marked ``integration``; the tests of what
    the background builder makes run last, in its order (more of their build overlaps the
    other tests)."""
    last = [job.module for job in background.JOBS.values()]

    def rank(item: pytest.Item) -> int:
        if not item.path.is_relative_to(INTEGRATION):
            return 0
        return last.index(item.path.stem) + 1 if item.path.stem in last else 0

    for item in items:
        if item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)
    items.sort(key=rank)  # stable: every other test keeps its place


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """What the background builder built, and how long it took."""
    for line in config.stash.get(background.REPORT, []):
        terminalreporter.write_line(line)
