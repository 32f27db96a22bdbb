"""Session fixtures of the runtime stage: the CPython 3.13.15 source and built runtimes
(``tests/support/runtimes.py`` builds them; cached in the persistent test store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bink_python.runtime.spec import RuntimeResult
from bink_python.store.store import Store
from tests.support.runtimes import (
    CPYTHON_SHA256,
    CPYTHON_VERSION,
    RuntimeFactory,
    build_test_runtime,
    debian_source,
)


@pytest.fixture(scope="session")
def cpython_source(test_cache_root: Path) -> Path:
    """The verified CPython 3.13.15 source tarball (Debian's pristine ``.orig.tar.xz``)."""
    return debian_source(test_cache_root, CPYTHON_VERSION, CPYTHON_SHA256)


@pytest.fixture(scope="session")
def runtime_store(test_cache_root: Path) -> Store:
    return Store(test_cache_root / "store")


@pytest.fixture(scope="session")
def runtime_factory(test_cache_root: Path) -> RuntimeFactory:
    """``runtime_factory(arch, profile="fast")``: the Debian 13 CPython 3.13.15 runtime."""
    built: dict[tuple[str, str], RuntimeResult] = {}

    def factory(arch: str, profile: str = "fast") -> RuntimeResult:
        if (arch, profile) not in built:
            built[(arch, profile)] = build_test_runtime(test_cache_root, arch, profile)
        return built[(arch, profile)]

    return factory
