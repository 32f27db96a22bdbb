"""Base root filesystems: the bottom layer of every image, built with ``mmdebstrap``.

One base per (OS, release, arch, variant, extra packages), cached in the Store under
``bases/<key>/`` as ``rootfs.tar`` (deterministic, uncompressed, written by
:mod:`bink_python.tarball`) plus ``record.json`` (packages from dpkg's status, size,
sha256, key parts). The key covers everything that determines the content: OS,
release, suite, arch, variant, the package list, the mirror state (sha256 of the
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
    set) and for the regular entries of :data:`bink_python.slim.REMOVALS`, apt lists
    and caches removed, ``/var/log`` files emptied, ``/etc/machine-id``
    empty, the host's ``/etc/hostname`` and ``/etc/resolv.conf`` removed (the container
    runtime provides them). The user ``apps`` (UID/GID 10000, home ``/home/apps``) is
    created with the distribution's own ``groupadd``/``useradd`` inside the chroot so
    ``passwd``, ``group``, ``shadow`` and ``gshadow`` (and ``subuid``/``subgid``) agree.
    Its shell is ``/bin/bash``: the regular images are general-purpose (derived
    Dockerfiles ``RUN`` things as ``apps``, people ``kubectl exec`` into pods), the
    password is locked (``!``) so a login shell grants nothing a ``nologin`` shell
    would refuse, and the distroless variant, which has no shell at all, uses
    ``/usr/sbin/nologin``.

Distroless variant (:func:`_build_distroless`)
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
    what is there. The distroless entries of :data:`bink_python.slim.REMOVALS` are
    removed from the copy. ``/etc/passwd`` and
    ``/etc/group`` are written with root, ``apps`` (10000) and ``nobody``.

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

import hashlib
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import mirrors, slim
from .binfmt import emulation_env, ensure_binfmt
from .distro import Distro, check_arch
from .errors import BuildError, ToolError
from .proc import require_tool, run
from .progress import SILENT, Progress
from .store import Store, cache_key, read_json, sha256_file, write_json
from .tarball import write_tree_tar_file

#: Bump when the recipe changes what a base contains (invalidates every cached base).
#: base-2: the removals of :data:`bink_python.slim.REMOVALS`.
RECIPE_VERSION = "base-2"

VARIANTS = ("regular", "distroless")

KIND = "bases"

APPS_USER = "apps"
APPS_UID = 10000
APPS_GID = 10000
APPS_HOME = "/home/apps"

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

#: Never kept in distroless, and dependencies are not followed through them.
DISTROLESS_DENY = frozenset(
    {
        "apt",
        "debconf",
        "debconf-2.0",
        "perl-base",
        "passwd",
        "login",
        "adduser",
        "libc-bin",
        # interpreters that satisfy base-files' Pre-Depends on awk
        "mawk",
        "gawk",
        "original-awk",
        "busybox",
    }
)

#: Roots of the distroless package closure besides the runtime packages.
DISTROLESS_ROOTS = ("base-files", "libc6")

#: Files that must never be in a distroless base (checked after the copy).
DISTROLESS_FORBIDDEN = (
    "usr/bin/sh",
    "usr/bin/bash",
    "usr/bin/dash",
    "usr/bin/dpkg",
    "usr/bin/apt",
    "usr/bin/apt-get",
    "usr/bin/ls",
    "usr/bin/perl",
    "usr/bin/cat",
    "usr/bin/env",
    "usr/bin/awk",
    "usr/bin/mawk",
)

#: Generated by maintainer scripts (not in any package's file list) and kept in distroless.
DISTROLESS_GENERATED = ("etc/ssl/certs", "etc/localtime", "etc/timezone", "etc/nsswitch.conf")

_URL_TIMEOUT = 20.0


@dataclass(frozen=True)
class BaseSpec:
    distro: Distro
    arch: str  # "amd64" | "arm64"
    variant: str  # "regular" | "distroless"
    extra_packages: tuple[str, ...] = ()

    def validate(self) -> None:
        check_arch(self.arch, BuildError, "base arch")
        if self.variant not in VARIANTS:
            raise BuildError(
                f"unknown base variant {self.variant!r}: expected one of {', '.join(VARIANTS)}"
            )
        for pkg in self.extra_packages:
            if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", pkg):
                raise BuildError(f"invalid extra package name {pkg!r} for the base")

    @property
    def packages(self) -> tuple[str, ...]:
        """The packages requested on top of minbase, sorted and unique."""
        return tuple(sorted({*self.distro.runtime_packages, *self.extra_packages}))

    @property
    def label(self) -> str:
        return f"{self.distro.name} {self.arch} {self.variant}"


@dataclass(frozen=True)
class BaseResult:
    spec: BaseSpec
    key: str
    rootfs: Path
    record: dict[str, Any]
    cached: bool


@dataclass(frozen=True)
class ArchiveSource:
    """One apt source line for the build: URI and suite."""

    uri: str
    suite: str


# --------------------------------------------------------------------------- sources


def archive_sources(distro: Distro, arch: str, mirror: str | None = None) -> list[ArchiveSource]:
    """The three suites a base is built from (release, updates, security)."""
    if distro.os == "debian":
        main = mirrors.debian_mirror(mirror)
        security = mirrors.debian_security_mirror()
        return [
            ArchiveSource(main, distro.suite),
            ArchiveSource(main, f"{distro.suite}-updates"),
            ArchiveSource(security, f"{distro.suite}-security"),
        ]
    if distro.os == "ubuntu":
        if arch == "amd64":
            main = mirrors.ubuntu_mirror(mirror)
        else:
            main = mirrors.ubuntu_ports_mirror(mirror)
        return [
            ArchiveSource(main, s)
            for s in (distro.suite, f"{distro.suite}-updates", f"{distro.suite}-security")
        ]
    raise BuildError(f"no base recipe for OS {distro.os!r}")


def mirror_state(sources: list[ArchiveSource]) -> dict[str, str]:
    """sha256 of each suite's ``InRelease`` (what apt will resolve against), by suite."""
    state: dict[str, str] = {}
    for source in sources:
        url = f"{source.uri}/dists/{source.suite}/InRelease"
        try:
            with urllib.request.urlopen(url, timeout=_URL_TIMEOUT) as response:
                data = response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BuildError(
                f"archive unreachable: cannot fetch {url} ({reason}); check the mirror "
                f"configuration (apt sources or BINK_PYTHON_*_MIRROR) and the network"
            ) from exc
        state[source.suite] = hashlib.sha256(data).hexdigest()
    return state


def key_parts(spec: BaseSpec, *, mirror_state: dict[str, str], epoch: int) -> dict[str, Any]:
    """Everything that determines a base's content."""
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
        "mirror_state": dict(sorted(mirror_state.items())),
        "epoch": epoch,
    }


def base_key(spec: BaseSpec, *, mirror_state: dict[str, str], epoch: int) -> str:
    """The Store key of a base (see :func:`key_parts`)."""
    return cache_key(key_parts(spec, mirror_state=mirror_state, epoch=epoch))


# --------------------------------------------------------------------------- dpkg status


def parse_status(text: str) -> dict[str, dict[str, str]]:
    """dpkg status stanzas of installed packages, by package name (fields kept raw)."""
    packages: dict[str, dict[str, str]] = {}
    for stanza in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        key = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        name = fields.get("Package")
        if name and fields.get("Status", "").endswith(" installed"):
            fields["_stanza"] = stanza.strip() + "\n"
            packages[name] = fields
    return packages


def package_records(status: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """name, version, architecture and source package of each installed package."""
    records = []
    for name in sorted(status):
        fields = status[name]
        source = fields.get("Source", "").split(" ", 1)[0] or name
        records.append(
            {
                "name": name,
                "version": fields.get("Version", ""),
                "architecture": fields.get("Architecture", ""),
                "source": source,
            }
        )
    return records


def _dep_names(value: str) -> list[list[str]]:
    """A Depends-style field as groups of alternative package names."""
    groups: list[list[str]] = []
    for group in value.split(","):
        names = []
        for alt in group.split("|"):
            name = alt.strip().split(" ", 1)[0].split("(", 1)[0].split(":", 1)[0].strip()
            if name:
                names.append(name)
        if names:
            groups.append(names)
    return groups


def distroless_closure(status: dict[str, dict[str, str]], roots: tuple[str, ...]) -> list[str]:
    """Installed packages reached from ``roots`` by Depends/Pre-Depends, skipping denied ones.

    Denied: :data:`DISTROLESS_DENY` and Essential packages other than ``base-files``
    (those are the shells, coreutils, dpkg and friends). A dependency group whose
    alternatives are all denied or not installed is not followed.
    """
    provides: dict[str, str] = {}
    for name, fields in status.items():
        for group in _dep_names(fields.get("Provides", "")):
            for virtual in group:
                provides.setdefault(virtual, name)

    def denied(name: str) -> bool:
        fields = status.get(name, {})
        essential = fields.get("Essential", "no") == "yes" and name != "base-files"
        return name in DISTROLESS_DENY or essential

    kept: set[str] = set()
    todo = list(roots)
    missing = [r for r in roots if r not in status]
    if missing:
        raise BuildError(f"packages {', '.join(missing)} are not installed in the regular base")
    while todo:
        name = todo.pop()
        if name in kept or denied(name):
            continue
        kept.add(name)
        fields = status[name]
        for field in ("Pre-Depends", "Depends"):
            for group in _dep_names(fields.get(field, "")):
                for alt in group:
                    real = alt if alt in status else provides.get(alt, "")
                    if real and not denied(real) and alt not in DISTROLESS_DENY:
                        todo.append(real)
                        break
    return sorted(kept)


# --------------------------------------------------------------------------- build


def _unmount_below(path: Path) -> None:
    """Unmount anything still mounted under ``path`` (an interrupted mmdebstrap)."""
    prefix = str(path.resolve())
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    points = [m.split()[1].replace("\\040", " ") for m in mounts if len(m.split()) > 1]
    for point in sorted(
        (p for p in points if p == prefix or p.startswith(prefix + "/")), key=len, reverse=True
    ):
        run(["umount", "--lazy", point], error=BuildError, what=f"unmounting {point}")


def _remove_tree(path: Path) -> None:
    if path.exists():
        _unmount_below(path)
        shutil.rmtree(path)


def _mmdebstrap_command(
    spec: BaseSpec, sources: list[ArchiveSource], target: Path, inrelease_dir: Path
) -> list[str]:
    distro = spec.distro
    cmd = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=directory",
        f"--architectures={spec.arch}",
        f"--components={','.join(distro.components)}",
        f"--include={','.join(spec.packages)}",
        f"--keyring={distro.keyring}",
    ]
    cmd += [f"--dpkgopt={opt}" for opt in (*SLIM_DPKG_OPTIONS, *slim.dpkg_options())]
    cmd += [
        # what apt actually resolved against, compared with the key's mirror state
        f'--customize-hook=cp "$1"/var/lib/apt/lists/*_InRelease {inrelease_dir}/',
        f'--customize-hook=chroot "$1" groupadd --gid {APPS_GID} {APPS_USER}',
        f'--customize-hook=chroot "$1" useradd --uid {APPS_UID} --gid {APPS_GID} '
        f"--home-dir {APPS_HOME} --create-home --shell /bin/bash {APPS_USER}",
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
) -> tuple[Path, dict[str, dict[str, str]]]:
    require_tool("mmdebstrap")
    if os.geteuid() != 0:
        raise ToolError("building a base needs root (mmdebstrap --mode=root): run as root")
    if not Path(spec.distro.keyring).is_file():
        pkg = "ubuntu-keyring" if spec.distro.os == "ubuntu" else "debian-archive-keyring"
        raise ToolError(
            f"archive keyring {spec.distro.keyring} for {spec.distro.name} is missing: "
            f"install {pkg} (apt-get install {pkg}) or put that keyring file there"
        )
    ensure_binfmt(spec.arch)
    tree = work / "tree"
    inrelease_dir = work / "inrelease"
    inrelease_dir.mkdir()
    env = {"SOURCE_DATE_EPOCH": str(epoch), "TMPDIR": str(work), "LC_ALL": "C.UTF-8"}
    env.update(emulation_env(spec.arch))
    run(
        _mmdebstrap_command(spec, sources, tree, inrelease_dir),
        error=BuildError,
        what=f"mmdebstrap ({spec.label})",
        env=env,
        log=log,
    )
    _unmount_below(tree)
    _check_inrelease(inrelease_dir, state)
    _slim_tree(tree, epoch)
    status = parse_status((tree / "var/lib/dpkg/status").read_text())
    return tree, status


def _resolve_dirs(root: Path, parts: list[str], depth: int = 0) -> list[str]:
    """``parts`` (directories) inside ``root`` with every symlink resolved, root-confined."""
    if depth > 40:
        raise BuildError(f"too many symlink levels resolving /{'/'.join(parts)} in the base")
    resolved: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        resolved.append(part)
        link = root.joinpath(*resolved)
        if link.is_symlink():
            target = os.readlink(link)
            start = [] if target.startswith("/") else resolved[:-1]
            resolved = _resolve_dirs(root, [*start, *target.split("/")], depth + 1)
    return resolved


def _canonical(root: Path, path: str) -> str:
    """``path`` inside ``root`` with symlinks in its parent directories resolved.

    dpkg file lists may name ``/lib/...`` where ``/lib`` is a merged-/usr link; the
    copy must go to the real directory. The last component is kept as it is.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        return ""
    return "/".join([*_resolve_dirs(root, parts[:-1]), parts[-1]])


def _copy_entry(src_root: Path, dst_root: Path, rel: str) -> None:
    """Copy one path (file, symlink or directory itself) with its parents, keeping metadata.

    ``rel`` must have no symlinks in its parent directories (see :func:`_canonical`).
    """
    src = src_root / rel
    dst = dst_root / rel
    parts = Path(rel).parts
    for i in range(1, len(parts)):
        parent_rel = Path(*parts[:i])
        dparent = dst_root / parent_rel
        if not dparent.exists() and not dparent.is_symlink():
            sparent = src_root / parent_rel
            st = sparent.stat()
            dparent.mkdir()
            os.chown(dparent, st.st_uid, st.st_gid)
            dparent.chmod(stat.S_IMODE(st.st_mode))
    if dst.exists() or dst.is_symlink():
        return
    st = src.lstat()
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISDIR(st.st_mode):
        dst.mkdir()
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(src, dst)
    else:
        return
    os.lchown(dst, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        dst.chmod(stat.S_IMODE(st.st_mode))
        os.utime(dst, (st.st_mtime, st.st_mtime))


def _info_file(src_root: Path, name: str, arch: str, suffix: str) -> Path | None:
    info = src_root / "var/lib/dpkg/info"
    for candidate in (info / f"{name}:{arch}.{suffix}", info / f"{name}.{suffix}"):
        if candidate.is_file():
            return candidate
    return None


def _build_distroless(
    spec: BaseSpec,
    regular_rootfs: Path,
    work: Path,
) -> tuple[Path, dict[str, dict[str, str]]]:
    src = work / "regular"
    src.mkdir()
    with tarfile.open(regular_rootfs) as tar:
        tar.extractall(src, numeric_owner=True, filter="fully_trusted")
    status = parse_status((src / "var/lib/dpkg/status").read_text())
    roots = (*DISTROLESS_ROOTS, *spec.distro.runtime_packages, *spec.extra_packages)
    kept = distroless_closure(status, tuple(dict.fromkeys(roots)))
    tree = work / "tree"
    tree.mkdir()
    shutil.copystat(src, tree)
    # the merged-/usr top-level links (/bin -> usr/bin, /lib64 ...) whatever package ships them
    for child in sorted(src.iterdir()):
        if child.is_symlink():
            _copy_entry(src, tree, child.name)
    arch_name = status["libc6"].get("Architecture", spec.arch)
    status_d = tree / "var/lib/dpkg/status.d"
    for name in kept:
        listing = _info_file(src, name, arch_name, "list")
        if listing is None:
            raise BuildError(f"dpkg file list of {name} missing in the regular base")
        for line in listing.read_text().splitlines():
            rel = _canonical(src, line.strip())
            if rel and ((src / rel).is_symlink() or (src / rel).exists()):
                _copy_entry(src, tree, rel)
    for rel in DISTROLESS_GENERATED:
        if (src / rel).is_symlink() or (src / rel).exists():
            _copy_entry(src, tree, rel)
            if (src / rel).is_dir() and not (src / rel).is_symlink():
                for child in sorted((src / rel).iterdir()):
                    _copy_entry(src, tree, f"{rel}/{child.name}")
    slim.remove_from_tree(tree, "distroless")
    for rel in DISTROLESS_FORBIDDEN:
        if (tree / rel).exists() or (tree / rel).is_symlink():
            raise BuildError(
                f"distroless base would contain /{rel}: the package selection is wrong"
            )
    status_d.mkdir(parents=True, exist_ok=True)
    for name in kept:
        (status_d / name).write_text(status[name]["_stanza"])
        md5sums = _info_file(src, name, arch_name, "md5sums")
        if md5sums is not None:  # only the files that are in the image
            (status_d / f"{name}.md5sums").write_text(
                slim.present_md5sums(md5sums.read_text(), tree)
            )
    # users: root, nobody and apps; no shell exists, so nologin everywhere
    (tree / "etc").mkdir(exist_ok=True)
    (tree / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        f"{APPS_USER}:x:{APPS_UID}:{APPS_GID}:{APPS_USER}:{APPS_HOME}:/usr/sbin/nologin\n"
    )
    (tree / "etc/group").write_text(f"root:x:0:\nnobody:x:65534:\n{APPS_USER}:x:{APPS_GID}:\n")
    for rel in ("etc/passwd", "etc/group"):
        (tree / rel).chmod(0o644)
    tmp = tree / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    home = tree / APPS_HOME.lstrip("/")
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, APPS_UID, APPS_GID)
    home.chmod(0o700)
    shutil.rmtree(src)
    return tree, {name: status[name] for name in kept}


def build_base(
    spec: BaseSpec,
    store: Store,
    *,
    epoch: int,
    mirror: str | None = None,
    progress: Progress = SILENT,
    force: bool = False,
) -> BaseResult:
    """Build (or reuse from the Store) the base root filesystem of ``spec``.

    ``epoch`` is SOURCE_DATE_EPOCH; ``mirror`` overrides the main archive mirror
    (the security mirror still comes from the configuration). ``force`` rebuilds
    even when the entry exists (for distroless, the regular base too).
    """
    spec.validate()
    sources = archive_sources(spec.distro, spec.arch, mirror)
    state = mirror_state(sources)
    parts = key_parts(spec, mirror_state=state, epoch=epoch)
    key = cache_key(parts)
    with store.lock(KIND, key):
        entry = store.lookup(KIND, key)
        if entry is not None and not force and (entry / "record.json").is_file():
            return BaseResult(
                spec, key, entry / "rootfs.tar", read_json(entry / "record.json"), cached=True
            )
        regular: BaseResult | None = None
        if spec.variant == "distroless":
            regular_spec = BaseSpec(spec.distro, spec.arch, "regular", spec.extra_packages)
            regular = build_base(
                regular_spec, store, epoch=epoch, mirror=mirror, progress=progress, force=force
            )
        log = store.root / "logs" / f"base-{key}.log"
        log.unlink(missing_ok=True)
        started = time.monotonic()
        with progress.step("base", spec.label), store.building(KIND, key) as tmp:
            work = tmp / "work"
            work.mkdir()
            try:
                if regular is None:
                    tree, status = _build_regular(spec, sources, state, work, epoch=epoch, log=log)
                else:
                    tree, status = _build_distroless(spec, regular.rootfs, work)
                rootfs = tmp / "rootfs.tar"
                sha256, size = write_tree_tar_file(tree, rootfs, epoch=epoch)
            finally:
                _remove_tree(work)
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
        return BaseResult(spec, key, final / "rootfs.tar", record, cached=False)
