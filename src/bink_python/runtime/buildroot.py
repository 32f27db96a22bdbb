"""Build roots: a chroot of the target OS release with compilers and ``-dev`` packages.

A build root is made once per (OS release, host architecture, package set, recipe)
*and archive state* (the sha256 of the ``InRelease`` files apt resolves against) with
``mmdebstrap`` and kept in the store (kind ``buildroots``): two hosts that build at the
same archive state get the same toolchain under the same key. The runtime key names
the build root by :func:`buildroot_key` (its identity without the archive state), so
an archive update gives a new build root for the next compile but does not by itself
invalidate runtimes already built. It is multiarch:
besides the native ``-dev`` packages it carries the cross toolchain and the ``-dev``
packages of every other architecture of the family, so one root serves native and
cross builds. Commands run inside it with ``bwrap`` (bubblewrap): the root is bound
read only, only the work directory is writable, no network, so the cached root is
never modified by a build.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import BinkError, BuildError
from ..host import mirrors as mirrors_mod
from ..host.apt import ArchiveSource, mirror_state
from ..host.arch import ARCHES
from ..host.distro import Distro
from ..host.proc import require_tool, run
from ..host.progress import SILENT, Progress
from ..settings import Mirrors
from ..store.kinds import BUILDROOTS
from ..store.store import Store, cache_key, write_json

#: Bump when the way build roots are made changes (invalidates cached roots).
BUILDROOT_RECIPE = 1

#: Packages that are tools, not libraries: never installed for a foreign architecture.
_NATIVE_ONLY = frozenset({"dpkg-dev"})

#: The PATH inside the build root.
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class BuildRootSpec:
    distro: Distro
    host_arch: str  # the architecture the root's tools run on

    @property
    def cross_arches(self) -> tuple[str, ...]:
        """Every other architecture of the family: its toolchain and libraries are included."""
        return tuple(a for a in sorted(ARCHES) if a != self.host_arch)

    @property
    def packages(self) -> tuple[str, ...]:
        """Everything installed in the root, foreign packages as ``name:arch``."""
        pkgs = list(self.distro.build_packages)
        for arch in self.cross_arches:
            pkgs.append(f"crossbuild-essential-{arch}")
            pkgs += [
                f"{p}:{arch}"
                for p in self.distro.build_packages
                if p.endswith("-dev") and p not in _NATIVE_ONLY
            ]
        return tuple(pkgs)


def buildroot_key(spec: BuildRootSpec) -> str:
    return cache_key(
        {
            "recipe": BUILDROOT_RECIPE,
            "os": spec.distro.os,
            "release": spec.distro.release,
            "suite": spec.distro.suite,
            "host_arch": spec.host_arch,
            "arches": [spec.host_arch, *spec.cross_arches],
            "packages": sorted(spec.packages),
        }
    )


def _archives(spec: BuildRootSpec, settings: Mirrors) -> list[tuple[str | None, str]]:
    """(arch or None for all, archive URL): Debian serves every arch from one archive,
    Ubuntu serves amd64 from the archive and arm64 from the ports archive."""
    if spec.distro.os == "debian":
        return [(None, mirrors_mod.debian_mirror(settings))]
    return [
        (
            arch,
            mirrors_mod.ubuntu_mirror(settings)
            if arch == "amd64"
            else mirrors_mod.ubuntu_ports_mirror(settings.machine()),
        )
        for arch in [spec.host_arch, *spec.cross_arches]
    ]


def apt_sources(spec: BuildRootSpec, settings: Mirrors) -> list[str]:
    """One-line apt sources of the root."""
    dist = f"{spec.distro.suite} {' '.join(spec.distro.components)}"
    return [
        f"deb [arch={arch}] {url} {dist}" if arch else f"deb {url} {dist}"
        for arch, url in _archives(spec, settings)
    ]


def archive_state(spec: BuildRootSpec, settings: Mirrors) -> dict[str, str]:
    """sha256 of each ``InRelease`` the root's apt resolves against, by archive URL."""

    state: dict[str, str] = {}
    for _, url in _archives(spec, settings):
        suite_state = mirror_state([ArchiveSource(url, spec.distro.suite)])
        state[url.rstrip("/")] = suite_state[spec.distro.suite]
    return state


def buildroot_store_key(spec: BuildRootSpec, state: dict[str, str]) -> str:
    """The store key of a build root: its identity and the archive state it was made from."""
    parts = {"buildroot": buildroot_key(spec), "archive_state": dict(sorted(state.items()))}
    return cache_key(parts)


def ensure_buildroot(
    spec: BuildRootSpec,
    store: Store,
    *,
    mirrors: Mirrors,
    progress: Progress = SILENT,
) -> Path:
    """The directory of the build root for ``spec`` at the archive's current state, made
    with mmdebstrap if not cached."""
    state = archive_state(spec, mirrors)
    key = buildroot_store_key(spec, state)
    found = store.lookup(BUILDROOTS.name, key)
    if found is not None and (found / "root" / "usr" / "bin").is_dir():
        return found / "root"
    mmdebstrap = require_tool("mmdebstrap")
    with store.lock(BUILDROOTS.name, key):
        found = store.lookup(BUILDROOTS.name, key)
        if found is not None and (found / "root" / "usr" / "bin").is_dir():
            return found / "root"
        sources = apt_sources(spec, mirrors)
        log = store.root / "logs" / f"buildroot-{key}.log"
        log.unlink(missing_ok=True)
        subject = f"{spec.distro.name} {spec.host_arch} (+{','.join(spec.cross_arches)})"
        with progress.step("buildroot", subject), store.building(BUILDROOTS.name, key) as tmp:
            root = tmp / "root"
            run(
                [
                    mmdebstrap,
                    "--mode=root",
                    "--variant=apt",
                    f"--architectures={','.join([spec.host_arch, *spec.cross_arches])}",
                    f"--keyring={mirrors.keyring(spec.distro.os, spec.distro.keyring)}",
                    '--aptopt=Acquire::Retries "3"',
                    f"--include={','.join(spec.packages)}",
                    # the mount point of the work directory (the root is bound read only)
                    '--customize-hook=mkdir -p "$1/build"',
                    spec.distro.suite,
                    str(root),
                    *sources,
                ],
                error=BuildError,
                what=f"mmdebstrap (build root {subject})",
                kind="mmdebstrap",
                log=log,
            )
            write_json(
                tmp / "buildroot.json",
                {
                    "os": spec.distro.os,
                    "release": spec.distro.release,
                    "host_arch": spec.host_arch,
                    "cross_arches": list(spec.cross_arches),
                    "packages": list(spec.packages),
                    "identity": buildroot_key(spec),
                    "archive_state": state,
                },
            )
        return store.path(BUILDROOTS.name, key) / "root"


def root_mounts(root: Path, *, writable: bool = False) -> list[str]:
    """bwrap arguments that mount ``root`` at / with a fresh /proc, /dev and /tmp."""
    return [
        "--bind" if writable else "--ro-bind",
        str(root),
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]


def run_in_root(
    root: Path,
    argv: Sequence[str],
    *,
    work: Path,
    what: str,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    ro_binds: Sequence[tuple[Path, str]] = (),
    cwd: str = "/build",
    error: type[BinkError] = BuildError,
    kind: str = "compile",
) -> str:
    """Run ``argv`` inside the build root with ``work`` bound read-write at ``/build``.

    The root itself is read only; ``ro_binds`` add (host path, path inside) pairs.
    Returns stdout when no log is given.
    """
    bwrap = require_tool("bwrap", "bubblewrap")
    cmd = [
        bwrap,
        *root_mounts(root),
        "--bind",
        str(work.resolve()),
        "/build",
    ]
    for host_path, inside in ro_binds:
        cmd += ["--ro-bind", str(host_path.resolve()), inside]
    full_env = {"PATH": ROOT_PATH, "HOME": "/build", "LANG": "C.UTF-8", "TERM": "dumb"}
    full_env.update(env or {})
    cmd += [
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--die-with-parent",
        "--clearenv",
        "--chdir",
        cwd,
    ]
    for name, value in sorted(full_env.items()):
        cmd += ["--setenv", name, value]
    cmd += ["--", *argv]
    proc = run(cmd, error=error, what=what, log=log, kind=kind)
    return proc.stdout or ""
