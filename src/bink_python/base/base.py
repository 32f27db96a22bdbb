"""Base root filesystems: the bottom layer of every image, built with ``mmdebstrap``.

One base per (OS, release, arch, variant, user, extra packages), cached in the Store under
``bases/<key>/`` as ``rootfs.tar`` (deterministic, uncompressed, written by
:mod:`bink_python.oci.tarball`) plus ``record.json`` (packages from dpkg's status, size,
sha256, key parts). The key covers everything that determines the content: OS,
release, suite, arch, variant, the package list, the user, the mirror state (sha256 of the
suites' ``InRelease`` files, a few hundred KB fetched on every call, so a security
update in the archive is a new key), the recipe version and ``SOURCE_DATE_EPOCH``.

Regular variant (:func:`_build_regular`)
    ``mmdebstrap --mode=root --variant=minbase`` (Essential, apt and Priority:required,
    as the official images) plus ``Distro.runtime_packages`` (the shared libraries
    CPython's extension modules link, ``ca-certificates``, ``tzdata``, ``netbase``) and
    any extra packages, from ``<suite>``, ``<suite>-updates`` and ``<suite>-security``.
    Slimmed like the official ``-slim`` images: dpkg ``path-exclude`` for
    ``/usr/share/{doc,man,info,locale}`` keeping ``copyright`` (``--dpkgopt``, so the
    rules stay in ``/etc/dpkg/dpkg.cfg.d/99mmdebstrap`` and also apply to packages
    users install later, and mmdebstrap applies them while extracting the essential
    set) and for the regular entries of :data:`bink_python.base.slim.REMOVALS`, apt lists
    and caches removed, ``/var/log`` files emptied, ``/etc/machine-id``
    empty, the host's ``/etc/hostname`` and ``/etc/resolv.conf`` removed (the container
    runtime provides them). The family's user (``BaseSpec.user``, from ``[family.user]`` of
    images.toml through the image description: ``apps``, UID/GID 10000, ``/home/apps``) is
    created with the distribution's own ``groupadd``/``useradd`` inside the chroot so
    ``passwd``, ``group``, ``shadow`` and ``gshadow`` (and ``subuid``/``subgid``) agree.
    Its shell is ``/bin/bash``: the regular images are general-purpose (derived
    Dockerfiles ``RUN`` things as ``apps``, people ``kubectl exec`` into pods), the
    password is locked (``!``) so a login shell grants nothing a ``nologin`` shell
    would refuse, and the distroless variant, which has no shell at all, uses
    ``/usr/sbin/nologin``.

Distroless variant (:func:`bink_python.base.distroless.build_distroless`)
    Derived from the regular base of the same inputs (cached, so it costs seconds):
    the regular tree is unpacked, and exactly the files that dpkg's ``info/<pkg>.list``
    say belong to the kept packages are copied into an empty tree, plus the files that
    maintainer scripts generated (the CA bundle and hash links in ``/etc/ssl/certs``,
    ``/etc/localtime``, ``/etc/nsswitch.conf``). Kept packages are the dependency
    closure (Depends/Pre-Depends) of ``base-files``, ``libc6``, the runtime packages
    and extra packages, never following into Essential packages (shells, coreutils,
    dpkg, ...), ``apt``, ``debconf`` or ``perl-base``. Each kept package gets its
    status stanza in ``/var/lib/dpkg/status.d/<pkg>`` (and ``<pkg>.md5sums``, listing
    the files that are there) as Google's distroless images do, so scanners see exactly
    what is there. The distroless entries of :data:`bink_python.base.slim.REMOVALS` are
    removed from the copy. ``/etc/passwd`` and ``/etc/group`` are written with root,
    the family's user and ``nobody``.

    Why not extract ``.deb`` data without maintainer scripts as distroless does? The
    scripts generate things images need (the CA bundle from ``update-ca-certificates``,
    ``/etc/localtime``); copying from a tree where the real scripts ran keeps those
    real and exactly in step with the regular variant (same versions, same mirror
    state), reuses apt's dependency resolution and the same slimming, and needs no
    second download path.

Ubuntu 22.04 uses the same recipe with the Ubuntu archive (ports archive for arm64)
and keyring; when no Ubuntu mirror is configured or it is unreachable the build fails
with a one-line error before mmdebstrap starts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import BuildError, ToolError, cleanup
from ..host.apt import ArchiveSource, archive_sources, image_apt_list, mirror_state
from ..host.binfmt import emulation_env, ensure_binfmt
from ..host.mounts import remove_tree, unmount_below
from ..host.proc import require_tool, run
from ..host.progress import SILENT, Progress
from ..oci.tarball import write_tree_tar_file
from ..settings import Mirrors
from ..store.kinds import BASES
from ..store.store import Built, Store, cache_key, read_json, sha256_file, write_json
from . import slim
from .distroless import build_distroless
from .dpkg import package_records, parse_status
from .spec import BaseSpec

#: Bump when the recipe changes what a base contains (invalidates every cached base).
#: base-2: the removals of :data:`bink_python.base.slim.REMOVALS`.
RECIPE_VERSION = "base-2"

KIND = BASES.name  # also in the key: "bases", as it always was

#: dpkg filters of the official ``-slim`` images (docker-debian-artifacts' slimify list).
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/linda/*",
    "path-exclude=/usr/share/lintian/overrides/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/man/*",
)


@dataclass(frozen=True)
class BaseResult(Built):
    spec: BaseSpec
    rootfs: Path


def key_parts(
    spec: BaseSpec,
    *,
    mirror_state: dict[str, str],
    epoch: int,
    apt_sources: str = "",
) -> dict[str, Any]:
    """Everything that determines a base's content (``apt_sources``: the image's list)."""
    return {
        "kind": KIND,
        "recipe": RECIPE_VERSION,
        "os": spec.distro.os,
        "release": spec.distro.release,
        "suite": spec.distro.suite,
        "components": list(spec.distro.components),
        "arch": spec.arch,
        "variant": spec.variant,
        "packages": list(spec.packages),
        "user": {
            "name": spec.user.name,
            "uid": spec.user.uid,
            "gid": spec.user.gid,
            "home": spec.user.home,
        },
        "mirror_state": dict(sorted(mirror_state.items())),
        "epoch": epoch,
        "apt_sources": apt_sources,
    }


# --------------------------------------------------------------------------- build


def _mmdebstrap_command(
    spec: BaseSpec,
    sources: list[ArchiveSource],
    target: Path,
    inrelease_dir: Path,
    keyring: str,
) -> list[str]:
    """The mmdebstrap command of a regular base, checking the archive with ``keyring``."""
    distro = spec.distro
    user = spec.user
    name = shlex.quote(user.name)
    cmd = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=directory",
        f"--architectures={spec.arch}",
        f"--components={','.join(distro.components)}",
        f"--include={','.join(spec.packages)}",
        f"--keyring={keyring}",
    ]
    cmd += [f"--dpkgopt={opt}" for opt in (*SLIM_DPKG_OPTIONS, *slim.dpkg_options())]
    cmd += [
        # what apt actually resolved against, compared with the key's mirror state
        f'--customize-hook=cp "$1"/var/lib/apt/lists/*_InRelease {inrelease_dir}/',
        f'--customize-hook=chroot "$1" groupadd --gid {user.gid} {name}',
        f'--customize-hook=chroot "$1" useradd --uid {user.uid} --gid {user.gid} '
        f"--home-dir {shlex.quote(user.home)} --create-home --shell /bin/bash {name}",
        distro.suite,
        str(target),
    ]
    components = " ".join(distro.components)
    cmd += [f"deb {s.uri} {s.suite} {components}" for s in sources]
    return cmd


def _slim_tree(root: Path, epoch: int) -> None:
    """The cleanup of the official slim images, made explicit and deterministic."""
    for rel in ("etc/hostname", "etc/resolv.conf"):
        (root / rel).unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")
    # docs: only copyright files; man, info, locale: nothing (also files from scripts)
    for dirpath, dirnames, filenames in os.walk(root / "usr/share/doc", topdown=False):
        here = Path(dirpath)
        for name in filenames:
            if name != "copyright":
                (here / name).unlink()
        for name in dirnames:
            sub = here / name
            if sub.is_symlink():
                sub.unlink()
            elif not any(sub.iterdir()):
                sub.rmdir()
    for rel in (
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "usr/share/linda",
        "usr/share/lintian/overrides",
    ):
        top = root / rel
        if top.is_dir():
            for child in top.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    # apt lists and caches (mmdebstrap removes most; make sure)
    for rel in ("var/lib/apt/lists", "var/cache/apt"):
        for dirpath, _, filenames in os.walk(root / rel):
            for name in filenames:
                if name != "lock":
                    Path(dirpath, name).unlink()
    # logs emptied, backups of generated state dropped
    for dirpath, _, filenames in os.walk(root / "var/log"):
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                path.write_bytes(b"")
    for pattern in ("var/cache/debconf/*-old", "var/lib/dpkg/*-old", "etc/*-"):
        for path in root.glob(pattern):
            path.unlink()
    (root / "var/cache/ldconfig/aux-cache").unlink(missing_ok=True)
    # what dpkg's filters left out must not come back through a maintainer script
    slim.remove_from_tree(root, "regular")
    # shadow "last change" day from SOURCE_DATE_EPOCH (useradd honours it; be sure)
    day = str(epoch // 86400)
    for rel in ("etc/shadow",):
        path = root / rel
        if path.is_file():
            lines = []
            for line in path.read_text().splitlines():
                fields = line.split(":")
                if len(fields) >= 3 and fields[2]:
                    fields[2] = day
                lines.append(":".join(fields))
            mode = path.stat().st_mode
            path.write_text("\n".join(lines) + "\n")
            path.chmod(stat.S_IMODE(mode))


def _write_apt_sources(tree: Path, text: str) -> None:
    """Replace the build's apt sources with the image's (no other list is left)."""
    apt = tree / "etc" / "apt"
    (apt / "sources.list.d").mkdir(parents=True, exist_ok=True)
    for old in (apt / "sources.list.d").iterdir():
        if old.name.endswith((".list", ".sources")):
            old.unlink()
    target = apt / "sources.list"
    target.unlink(missing_ok=True)
    target.write_text(text)
    target.chmod(0o644)


def _check_inrelease(inrelease_dir: Path, state: dict[str, str]) -> None:
    used = {sha256_file(p) for p in inrelease_dir.iterdir()}
    if used != set(state.values()):
        raise BuildError(
            "the archive changed during the base build (its InRelease files differ from the "
            "ones the cache key was computed from): run the build again"
        )


def _build_regular(
    spec: BaseSpec,
    sources: list[ArchiveSource],
    state: dict[str, str],
    work: Path,
    *,
    epoch: int,
    log: Path,
    keyring: str,
) -> tuple[Path, dict[str, dict[str, str]]]:
    require_tool("mmdebstrap")
    if os.geteuid() != 0:
        raise ToolError("building a base needs root (mmdebstrap --mode=root): run as root")
    if not Path(keyring).is_file():
        pkg = "ubuntu-keyring" if spec.distro.os == "ubuntu" else "debian-archive-keyring"
        raise ToolError(
            f"archive keyring {keyring} for {spec.distro.name} is missing: install {pkg} "
            f"(apt-get install {pkg}), put that keyring file there or name one in "
            f"BINK_PYTHON_{spec.distro.os.upper()}_KEYRING"
        )
    ensure_binfmt(spec.arch)
    tree = work / "tree"
    inrelease_dir = work / "inrelease"
    inrelease_dir.mkdir()
    env = {"SOURCE_DATE_EPOCH": str(epoch), "TMPDIR": str(work), "LC_ALL": "C.UTF-8"}
    env.update(emulation_env(spec.arch))
    run(
        _mmdebstrap_command(spec, sources, tree, inrelease_dir, keyring),
        error=BuildError,
        what=f"mmdebstrap ({spec.label})",
        kind="mmdebstrap",
        env=env,
        log=log,
    )
    unmount_below(tree, error=BuildError)
    _check_inrelease(inrelease_dir, state)
    _slim_tree(tree, epoch)
    status = parse_status((tree / "var/lib/dpkg/status").read_text())
    return tree, status


def build_base(
    spec: BaseSpec,
    store: Store,
    *,
    epoch: int,
    mirrors: Mirrors,
    progress: Progress = SILENT,
    force: bool = False,
) -> BaseResult:
    """Build (or reuse from the Store) the base root filesystem of ``spec``.

    ``epoch`` is SOURCE_DATE_EPOCH; ``mirrors`` says where the archive is (its
    ``build``, ``--mirror``, overrides the main archive only), what the image names
    and the archive keyring. ``force`` rebuilds
    even when the entry exists (for distroless, the regular base too).
    """
    spec.validate()
    sources = archive_sources(spec.distro, spec.arch, mirrors)
    apt_list, unset = image_apt_list(spec.distro, spec.arch, sources, mirrors)
    state = mirror_state(sources)
    parts = key_parts(spec, mirror_state=state, epoch=epoch, apt_sources=apt_list)
    key = cache_key(parts)
    with store.lock(KIND, key):
        entry = store.lookup(KIND, key)
        if entry is not None and not force and (entry / "record.json").is_file():
            found = read_json(entry / "record.json")
            return BaseResult(
                key=key, record=found, cached=True, spec=spec, rootfs=entry / "rootfs.tar"
            )
        regular: BaseResult | None = None
        if spec.variant == "distroless":
            regular_spec = replace(spec, variant="regular")
            regular = build_base(
                regular_spec, store, epoch=epoch, mirrors=mirrors, progress=progress, force=force
            )
        log = store.root / "logs" / f"base-{key}.log"
        log.unlink(missing_ok=True)
        started = time.monotonic()
        with progress.step("base", spec.label), store.building(KIND, key) as tmp:
            work = tmp / "work"
            work.mkdir()
            with cleanup(lambda: remove_tree(work, error=BuildError), f"removing {work}"):
                if regular is None:
                    if unset:
                        progress.warn(
                            f"{spec.label}: {', '.join(unset)} unset: the image's apt sources "
                            "name the build mirror; set them to the archive users of the "
                            "images should reach"
                        )
                    keyring = mirrors.keyring(spec.distro.os, spec.distro.keyring)
                    tree, status = _build_regular(
                        spec, sources, state, work, epoch=epoch, log=log, keyring=keyring
                    )
                    _write_apt_sources(tree, apt_list)
                else:
                    tree, status = build_distroless(spec, regular.rootfs, work)
                rootfs = tmp / "rootfs.tar"
                sha256, size = write_tree_tar_file(tree, rootfs, epoch=epoch)
            record: dict[str, Any] = {
                "key": key,
                "key_parts": parts,
                "os": spec.distro.os,
                "release": spec.distro.release,
                "suite": spec.distro.suite,
                "arch": spec.arch,
                "variant": spec.variant,
                "epoch": epoch,
                "packages": package_records(status),
                "size": size,
                "sha256": sha256,
                "build_seconds": round(time.monotonic() - started, 1),
            }
            if regular is not None:
                record["derived_from"] = regular.key
            write_json(tmp / "record.json", record)
        final = store.path(KIND, key)
        return BaseResult(
            key=key, record=record, cached=False, spec=spec, rootfs=final / "rootfs.tar"
        )
