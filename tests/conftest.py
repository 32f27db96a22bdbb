"""Shared test configuration.

Expensive artifacts (base root filesystems, compiled CPython runtimes, fetched
tarballs) are built once and cached outside the clone, under
``$BINK_PYTHON_TEST_CACHE`` (default ``/var/tmp/bink-python-test-cache``), so repeated
runs are quick. Integration tests are marked ``integration``; one whose cold run alone
would take too much of CI's hour would also be marked ``extended`` and run only with
``BINK_PYTHON_EXTENDED=1`` (pytest's summary names the skip). None is today: the one
release runtime compile (about 12 minutes) is part of the default suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .integration import background

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def test_cache_root() -> Path:
    """The persistent cache shared by integration tests (outside the clone)."""
    root = Path(os.environ.get("BINK_PYTHON_TEST_CACHE", "/var/tmp/bink-python-test-cache"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests of what the background builder makes run last, in its order (more of
    their build overlaps the other tests); ``extended`` tests run only when
    ``BINK_PYTHON_EXTENDED=1`` asks for them."""
    last = [job.module for job in background.JOBS.values()]

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        return last.index(module) + 1 if module in last else 0

    items.sort(key=rank)  # stable: every other test keeps its place
    if os.environ.get("BINK_PYTHON_EXTENDED") == "1":
        return
    skip = pytest.mark.skip(reason="extended: set BINK_PYTHON_EXTENDED=1 to run it")
    for item in items:
        if "extended" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """What the background builder built, and how long it took."""
    for line in config.stash.get(background.REPORT, []):
        terminalreporter.write_line(line)
