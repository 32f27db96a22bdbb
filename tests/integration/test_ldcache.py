"""The loader cache of regular images: made by the image's own ldconfig over the base
and the runtime, on both arches (arm64's under qemu-user), the same bytes every time."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bink_python.image.assemble import LayerSource
from bink_python.image.ldcache import ld_cache
from bink_python.store.store import Store
from tests.support.runtimes import RuntimeFactory

from .fixtures_base import BaseFactory


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_the_cache_lists_libpython_and_is_reproducible(
    arch: str, base_factory: BaseFactory, runtime_factory: RuntimeFactory, tmp_path: Path
) -> None:
    base = base_factory(arch, "regular")
    runtime = runtime_factory(arch)
    layers = (
        LayerSource(base.rootfs, "sha256:" + str(base.record["sha256"]), "base"),
        LayerSource(runtime.tarball, "sha256:" + str(runtime.record["sha256"]), "runtime"),
    )
    first = ld_cache(*layers, arch, Store(tmp_path / "one"))
    again = ld_cache(*layers, arch, Store(tmp_path / "two"))  # a separate ldconfig run
    assert first == again
    assert first == ld_cache(*layers, arch, Store(tmp_path / "one"))  # the cached entry
    cache = tmp_path / "ld.so.cache"
    cache.write_bytes(first)
    # glibc's cache format does not depend on the arch: the host's ldconfig reads it
    listing = subprocess.run(
        ["/sbin/ldconfig", "-p", "-C", str(cache)], capture_output=True, text=True, check=True
    ).stdout
    assert "libpython3.13.so.1.0 " in listing
    assert "=> /usr/local/lib/libpython3.13.so.1.0" in listing
    assert "libssl.so.3 " in listing  # the base's libraries are all still there
    triplet = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[arch]
    assert f"lib/{triplet}/libssl.so.3" in listing
