"""Getting a runtime: from the cache, or compiled in a build root and stored.

Store layout (kind ``runtimes``)::

    runtimes/<key>/runtime.tar    the /usr/local tree
    runtimes/<key>/record.json
    runtimes/<key>/build.log      the full build log
    logs/runtime-<key>-<time>-<pid>.log   the log of each attempt (kept on failure)
"""

from __future__ import annotations

import enum
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ..errors import BuildError, FetchError
from ..host.arch import host_arch
from ..host.binfmt import ensure_binfmt
from ..host.progress import SILENT, Progress
from ..settings import Mirrors
from ..store.kinds import RUNTIMES
from ..store.store import Store, read_json, sha256_file, write_json
from .buildroot import BuildRootSpec, ensure_buildroot
from .plan import plan_build, runtime_key
from .recipe import Job, compile_and_package, unpack
from .spec import RuntimeResult, RuntimeSpec


class BuildMode(enum.Enum):
    """Where ``build_runtime`` may take the runtime from."""

    REUSE = "reuse"  # the cache, else compiled here
    REBUILD = "rebuild"  # compiled here even when the cache has it
    CACHED_ONLY = "cached-only"  # the cache only: a miss fails


def _cached(spec: RuntimeSpec, key: str, store: Store) -> RuntimeResult | None:
    entry = store.lookup(RUNTIMES.name, key)
    if entry is None:
        return None
    tar = entry / "runtime.tar"
    rec = entry / "record.json"
    if not (tar.is_file() and rec.is_file()):
        return None
    return RuntimeResult(key=key, record=read_json(rec), cached=True, spec=spec, tarball=tar)


def build_runtime(
    spec: RuntimeSpec,
    source: Path,
    store: Store,
    *,
    epoch: int,
    mirrors: Mirrors,
    progress: Progress = SILENT,
    jobs: int | None = None,
    mode: BuildMode = BuildMode.REUSE,
    build_host: str | None = None,
) -> RuntimeResult:
    """Build (or take from the cache) the CPython runtime of ``spec`` from ``source``.

    ``build_host`` is the arch of the machine the runtime is (or was) compiled on
    (default: this machine). A runtime of another build host can come from the cache
    (handed over by the job that built it) but is never compiled here; with
    ``BuildMode.CACHED_ONLY`` nothing is compiled at all: a miss names the key and fails.

    The runtime's timestamps (``SOURCE_DATE_EPOCH`` of the compile, clamped mtimes of
    the tar) come from the source release (the newest member of the source tarball),
    not from ``epoch``: an image rebuilt with a new epoch (a base security update) must
    reuse the same runtime bytes, so ``epoch`` is not part of the key and is only
    noted in the record (``requested_epoch``).
    """
    here = host_arch()
    host = build_host or here
    key = runtime_key(spec, host)
    if mode is not BuildMode.REBUILD:
        hit = _cached(spec, key, store)
        if hit is not None:
            return hit
    what = f"the CPython {spec.version} {spec.distro.ident} {spec.arch} {spec.profile} runtime"
    how = f"compiled on {host}" + (" (cross)" if spec.arch != host else " (native)")
    if mode is BuildMode.CACHED_ONLY:
        raise BuildError(
            f"{what} {how} (key {key}) is not in the cache {store.root}: it comes from the "
            "runtime job that builds it; refusing to compile a different build here"
        )
    if host != here:
        raise BuildError(
            f"{what} {how} (key {key}) is not in the cache, and this machine is {here}: "
            f"build it on a {host} machine and hand the cache entry over"
        )
    with store.lock(RUNTIMES.name, key):
        if mode is not BuildMode.REBUILD:
            hit = _cached(spec, key, store)
            if hit is not None:
                return hit
        return _build(
            spec,
            key,
            source,
            store,
            epoch=epoch,
            mirrors=mirrors,
            progress=progress,
            jobs=jobs or os.cpu_count() or 1,
            build_host=host,
        )


def _build(
    spec: RuntimeSpec,
    key: str,
    source: Path,
    store: Store,
    *,
    epoch: int,
    mirrors: Mirrors,
    progress: Progress,
    jobs: int,
    build_host: str,
) -> RuntimeResult:
    plan = plan_build(spec, build_host)
    _check_source(spec, source)
    started = time.monotonic()
    with progress.step("buildroot", f"{spec.distro.name} {plan.host_arch}"):
        root = ensure_buildroot(
            BuildRootSpec(spec.distro, plan.host_arch), store, mirrors=mirrors, progress=progress
        )
    build_python: RuntimeResult | None = None
    if plan.cross:
        # the build Python: the host-arch runtime of the same version and profile, not in
        # the key because it only runs pure-Python build scripts and ensurepip
        build_python = build_runtime(
            replace(spec, arch=plan.host_arch, pgo=None),
            source,
            store,
            epoch=epoch,
            mirrors=mirrors,
            progress=progress,
            jobs=jobs,
        )
    if plan.make_env:
        # the PGO profile task of a cross build runs the target's interpreter under qemu-user
        ensure_binfmt(spec.arch)
    # one log per attempt: a failed attempt's log survives the next attempt
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    log = store.root / "logs" / f"runtime-{key}-{stamp}-{os.getpid()}.log"
    work_parent = store.root / "work"
    work_parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"runtime-{key}-", dir=work_parent))
    try:
        with store.building(RUNTIMES.name, key) as entry:
            job = Job(
                spec=spec,
                plan=plan,
                key=key,
                root=root,
                work=work,
                log=log,
                subject=f"CPython {spec.version} {spec.distro.name} {spec.arch} ({spec.profile})",
                jobs=jobs,
                epoch=unpack(source, work, spec, build_python),
                build_python=build_python,
                progress=progress,
            )
            record = compile_and_package(job, entry)
            record["requested_epoch"] = epoch
            record["build_seconds"] = round(time.monotonic() - started, 1)
            write_json(entry / "record.json", record)
            shutil.copyfile(log, entry / "build.log")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    final = store.path(RUNTIMES.name, key)
    record = read_json(final / "record.json")
    return RuntimeResult(
        key=key, record=record, cached=False, spec=spec, tarball=final / "runtime.tar"
    )


def _check_source(spec: RuntimeSpec, source: Path) -> None:
    """The source tarball is there and is the one the spec pins."""
    if not source.is_file():
        raise FetchError(f"CPython source {source} does not exist: run the fetch stage first")
    actual = sha256_file(source)
    if actual != spec.source_sha256:
        raise FetchError(
            f"CPython source {source} has sha256 {actual}, expected {spec.source_sha256}: "
            "delete it and fetch again"
        )
