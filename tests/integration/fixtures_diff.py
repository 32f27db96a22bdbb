"""Session fixtures of the diff tests: builds of the offline example's family that differ.

``diff_builds`` builds three amd64, fast-profile layouts of the example family with the
real pipeline (every stage cached in the persistent test store):

* ``old``: the example as it is (CPython 3.13.15);
* ``package``: the same, with one more Debian package (``less``) in the bases, the way
  a security rebuild changes the base and nothing else (``BuildOptions.extra_packages``);
* ``python``: the same family at CPython 3.13.5 (Debian 13's own version, whose
  pristine tarball Debian's archive carries; its sha256 is the one in the signed
  ``python3.13_3.13.5-2.dsc``).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bink_python.family.config import load_family
from bink_python.host.progress import Progress
from bink_python.inputs.cache import cache_add
from bink_python.inputs.lockfile import Lock
from bink_python.oci.layout import Layout
from bink_python.pipeline.build import build_family
from bink_python.store.store import Store

from .fixtures_runtime import debian_source, fast_build_options
from .fixtures_verify import EXAMPLE

OTHER_VERSION = "3.13.5"
OTHER_SHA256 = "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"
EXTRA_PACKAGE = "less"


@dataclass(frozen=True)
class DiffBuilds:
    old: Layout
    package: Layout  # one more base package
    python: Layout  # CPython 3.13.5 instead of 3.13.15


def build_example(
    work: Path,
    store: Store,
    *,
    python: tuple[str, str, Path] | None = None,
    extra_package: bool = False,
) -> Layout:
    """The example family (amd64, fast) built into ``work/oci``; optionally changed."""
    config = work / "config"
    config.mkdir(parents=True)
    text = (EXAMPLE / "images.toml").read_text()
    lock = json.loads((EXAMPLE / "images.lock").read_text())
    if python is not None:
        version, sha, _ = python
        text = text.replace('python = "3.13.15"', f'python = "{version}"')
        old = lock["artifacts"].pop("cpython:3.13.15")
        minor = ".".join(version.split(".")[:2])
        lock["artifacts"][f"cpython:{version}"] = {
            **old,
            "filename": f"Python-{version}.tar.xz",
            "sha256": sha,
            "version": version,
            "urls": [
                f"https://www.python.org/ftp/python/{version}/Python-{version}.tar.xz",
                f"debian:pool/main/p/python{minor}/python{minor}_{version}.orig.tar.xz",
            ],
        }
    (config / "images.toml").write_text(text)
    (config / "images.lock").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    family = load_family(config / "images.toml")
    version = family.component("linkerd-await").version
    binary = work / "linkerd-await-amd64"
    subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(binary), str(EXAMPLE / "linkerd-await-standin.c")],
        check=True,
    )
    cache_add(
        [binary], store.root, lock_path=family.lock_path, for_=f"linkerd-await:{version}:amd64"
    )
    if python is not None:
        cache_add([python[2]], store.root, lock_path=family.lock_path, for_=f"cpython:{python[0]}")
    family = load_family(config / "images.toml")
    options = fast_build_options(work / "oci", ("amd64",))
    if extra_package:
        options = dataclasses.replace(options, extra_packages=(EXTRA_PACKAGE,))
    build_family(
        family, family.tags, Lock.load(family.lock_path), store, options, progress=Progress()
    )
    return Layout(work / "oci")


@pytest.fixture(scope="session")
def diff_builds(test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> DiffBuilds:
    store = Store(test_cache_root / "store")
    source = debian_source(test_cache_root, OTHER_VERSION, OTHER_SHA256)
    work = tmp_path_factory.mktemp("diff-builds")
    return DiffBuilds(
        old=build_example(work / "old", store),
        package=build_example(work / "package", store, extra_package=True),
        python=build_example(work / "python", store, python=(OTHER_VERSION, OTHER_SHA256, source)),
    )
