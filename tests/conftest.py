"""Shared test configuration.

Expensive artifacts (base root filesystems, compiled CPython runtimes, fetched
tarballs) are built once and cached outside the clone, under
``$BINK_PYTHON_TEST_CACHE`` (default ``/var/tmp/bink-python-test-cache``), so repeated
runs are quick. Integration tests are marked ``integration``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def test_cache_root() -> Path:
    """The persistent cache shared by integration tests (outside the clone)."""
    root = Path(os.environ.get("BINK_PYTHON_TEST_CACHE", "/var/tmp/bink-python-test-cache"))
    root.mkdir(parents=True, exist_ok=True)
    return root
