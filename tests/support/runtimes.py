"""Test runtimes: the CPython 3.13.15 source from the machine's Debian mirror, and
runtimes built from it into the persistent test store (cache hits once built).

The source tarball is the pristine one Debian's archive carries, checked against the
python.org sha256.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bink_python.host.arch import ARCHES
from bink_python.host.distro import get_distro
from bink_python.host.progress import Progress
from bink_python.inputs.fetch import FetchSettings, resolve_url
from bink_python.inputs.lockfile import DEBIAN_SCHEME, cpython_artifact
from bink_python.pipeline.build import BuildOptions
from bink_python.runtime.build import build_runtime
from bink_python.runtime.spec import RuntimeResult, RuntimeSpec
from bink_python.settings import Upstream
from bink_python.store.store import Store, sha256_file

from .machine import machine_mirrors

CPYTHON_VERSION = "3.13.15"
CPYTHON_SHA256 = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
#: SOURCE_DATE_EPOCH of the test artifacts (fixed: cached artifacts stay valid).
TEST_EPOCH = 1767225600


def fast_build_options(output: Path, arches: tuple[str, ...] = ()) -> BuildOptions:
    """A test build: the fast profile, TEST_EPOCH, no verify, revision "test"."""
    return BuildOptions(
        arches=arches,
        profile="fast",
        output=output,
        epoch=TEST_EPOCH,
        verify=False,
        revision="test",
    )


RuntimeFactory = Callable[..., RuntimeResult]


def runtime_member(tarball: Path, name: str) -> bytes:
    """The file ``name`` (``usr/local/...``) of a runtime tarball."""
    with tarfile.open(tarball) as tar:
        stream = tar.extractfile(name)
        assert stream is not None, name
        return stream.read()


def sysconfig_vars(tarball: Path, arch: str) -> dict[str, str]:
    """A 3.13 runtime's sysconfig build variables (its ``_sysconfigdata`` module, run)."""
    name = f"usr/local/lib/python3.13/_sysconfigdata__linux_{ARCHES[arch].gnu}.py"
    namespace: dict[str, dict[str, str]] = {}
    # the module only assigns a dict
    exec(compile(runtime_member(tarball, name).decode(), name, "exec"), namespace)
    return namespace["build_time_vars"]


def debian_source(test_cache_root: Path, version: str, sha256: str) -> Path:
    """CPython ``version``'s pristine tarball from the machine's Debian mirror, verified."""
    pool = next(
        u for u in cpython_artifact(version, Upstream()).urls if u.startswith(DEBIAN_SCHEME)
    )
    name = pool.rsplit("/", 1)[-1]  # python3.X_<version>.orig.tar.xz
    path = test_cache_root / "sources" / name
    if path.is_file() and sha256_file(path) == sha256:
        os.utime(path)  # used: the suite's cache pruning keeps it
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    url = resolve_url(pool, FetchSettings(mirrors=machine_mirrors()))
    tmp = path.with_name(f".{name}.{os.getpid()}.part")  # the background builder may race us
    with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
        shutil.copyfileobj(response, out)
    actual = sha256_file(tmp)
    assert actual == sha256, f"{url} has sha256 {actual}, expected {sha256}"
    tmp.rename(path)
    return path


def build_test_runtime(
    test_cache_root: Path,
    arch: str,
    profile: str,
    progress: Progress | None = None,
    *,
    version: str = CPYTHON_VERSION,
    sha256: str = CPYTHON_SHA256,
) -> RuntimeResult:
    """The Debian 13 runtime of CPython ``version`` for ``arch`` and ``profile``, in the
    test store (a cache hit once built; waits for another process building the same entry)."""
    source = debian_source(test_cache_root, version, sha256)
    spec = RuntimeSpec(version, sha256, get_distro("debian", "13"), arch, profile)
    store = Store(test_cache_root / "store")
    return build_runtime(
        spec,
        source,
        store,
        epoch=TEST_EPOCH,
        progress=progress or Progress(),
        mirrors=machine_mirrors(),
    )
