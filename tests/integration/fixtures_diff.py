"""Session fixtures of the diff tests: builds of the offline example's family that differ.

``diff_builds`` builds three amd64, fast-profile layouts of the example family with
``tests/support/example.py`` (every stage cached in the persistent test store):

* ``old``: the example as it is (CPython 3.13.15);
* ``package``: the same, with one more Debian package (``less``) in the bases, the way
  a security rebuild changes the base and nothing else (``BuildOptions.extra_packages``);
* ``python``: the same family at CPython 3.13.5 (Debian 13's own version, whose
  pristine tarball Debian's archive carries; its sha256 is the one in the signed
  ``python3.13_3.13.5-2.dsc``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from bink_python.oci.layout import Layout
from bink_python.store.store import Store
from tests.support.example import OtherPython, build_example
from tests.support.runtimes import debian_source

OTHER_VERSION = "3.13.5"
OTHER_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
EXTRA_PACKAGE = "less"


@dataclass(frozen=True)
class DiffBuilds:
    old: Layout
    package: Layout  # one more base package
    python: Layout  # CPython 3.13.5 instead of 3.13.15


@pytest.fixture(scope="session")
def diff_builds(test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> DiffBuilds:
    store = Store(test_cache_root / "store")
    source = debian_source(test_cache_root, OTHER_VERSION, OTHER_SHA256)
    work = tmp_path_factory.mktemp("diff-builds")
    other = OtherPython(OTHER_VERSION, OTHER_SHA256, source)
    return DiffBuilds(
        old=build_example(work / "old", store).layout,
        package=build_example(work / "package", store, extra_package=EXTRA_PACKAGE).layout,
        python=build_example(work / "python", store, python=other).layout,
    )
