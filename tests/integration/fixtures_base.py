"""Session fixtures of the base stage: Debian 13 base root filesystems.

``base_factory(arch, variant)`` builds (once per session, and once per mirror state
across sessions: entries live in the persistent test cache ``<test cache>/store``,
shared with the runtime fixtures) the Debian 13 base of that arch and variant.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bink_python.base.base import BaseResult, build_base
from bink_python.base.spec import BaseSpec
from bink_python.host.distro import get_distro
from bink_python.host.progress import Progress
from bink_python.store.store import Store
from tests.support.family_toml import TEST_USER
from tests.support.machine import machine_mirrors
from tests.support.runtimes import TEST_EPOCH

BaseFactory = Callable[[str, str], BaseResult]


@pytest.fixture(scope="session")
def base_store(test_cache_root: Path) -> Store:
    return Store(test_cache_root / "store")


@pytest.fixture(scope="session")
def base_factory(base_store: Store) -> BaseFactory:
    """``base_factory(arch, variant)``: the Debian 13 base (cached across sessions)."""
    built: dict[tuple[str, str], BaseResult] = {}

    def factory(arch: str, variant: str) -> BaseResult:
        if (arch, variant) not in built:
            spec = BaseSpec(get_distro("debian", "13"), arch, variant, TEST_USER)
            built[(arch, variant)] = build_base(
                spec,
                base_store,
                epoch=TEST_EPOCH,
                progress=Progress(),
                mirrors=machine_mirrors(),
            )
        return built[(arch, variant)]

    return factory
