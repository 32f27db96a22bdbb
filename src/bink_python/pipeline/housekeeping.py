"""The whole cache directory: what uses the space (``cache du``), what is corrupt
(``cache verify``) and what can go (``cache prune``).

Kinds under the cache root (see store.py and fetch.py)::

    sha256/              fetched inputs, content addressed
    bases/ runtimes/ buildroots/ gzip-layers/ zstd-layers/ files-layers/ ld-caches/
                         keyed build entries
    work/                per-attempt build directories (runtime compiles)
    logs/                per-attempt logs
    verify-pycache/      the bytecode verify's probes compiled, kept between runs
    <kind>/.tmp-* .old-* entries being built or replaced ("tmp" in the report)

What the current ``images.toml`` and ``images.lock`` need is never pruned: every
pinned input, the runtime of every buildable (tag, arch) in both profiles, the newest
base and build root of each (OS, arch, variant), and the gzip layers of those bases
and runtimes. Everything else is removed when older than ``older_than`` (default:
any age) and then, oldest first, until the cache fits ``max_bytes``. An entry being
built (its ``.lock-<key>`` is held) is never touched; an abandoned one (a killed
build) is, after unmounting whatever was left mounted below it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import assert_never

from ..errors import BinkError, BuildError
from ..family.config import Family
from ..host.arch import host_arch
from ..host.mounts import remove_tree
from ..inputs.cache import cache_verify
from ..inputs.lockfile import Lock, cpython_name
from ..runtime.plan import runtime_key
from ..runtime.spec import PROFILES
from ..store.kinds import ENTRY_KINDS, RUNTIMES, EntryKind, Keep
from ..store.store import read_json, sha256_stream
from .plan import runtime_spec

#: Keyed kinds of the Store, in report order.
KEYED = tuple(kind.name for kind in ENTRY_KINDS)
#: Every kind the report names, in order ("tmp": partial entries of any kind).
KINDS = ("sha256", *KEYED, "work", "logs", "verify-pycache", "tmp", "other")

_PARTIAL = re.compile(r"\.(tmp|old)-([0-9a-f]{32}|[0-9a-f]{64})-")
_WORK = re.compile(r"runtime-([0-9a-f]{32})-")


@dataclass(frozen=True)
class Item:
    """One removable unit of the cache: an entry, a partial entry, a log, a work dir."""

    kind: str
    path: Path
    size: int  # bytes on disk (hard links counted once per report)
    mtime: float
    needed: bool = False
    busy: bool = False  # being built right now: never removed


def _disk_size(path: Path, seen: set[tuple[int, int]]) -> int:
    """Bytes on disk below ``path`` (not following symlinks, each inode once)."""
    total = 0
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    stack = [(path, st)]
    while stack:
        cur, st = stack.pop()
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            continue
        seen.add(ident)
        total += st.st_blocks * 512
        if os.path.isdir(cur) and not os.path.islink(cur):
            try:
                names = os.listdir(cur)
            except OSError:
                continue
            root_dev = st.st_dev
            for name in names:
                child = cur / name
                try:
                    cst = child.lstat()
                except FileNotFoundError:
                    continue
                if cst.st_dev == root_dev:  # never count (or cross into) a mount
                    stack.append((child, cst))
    return total


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return 0.0


def _lock_free(lock_path: Path) -> bool:
    """Whether nobody holds ``lock_path`` (an absent lock file is free)."""
    if not lock_path.exists():
        return True
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return True


@contextlib.contextmanager
def _holding(lock_path: Path) -> Iterator[bool]:
    """Take ``lock_path`` without waiting; yields whether it was taken."""
    if not lock_path.parent.is_dir():
        yield True
        return
    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# -- what the current family needs ------------------------------------------------------


@dataclass(frozen=True)
class Needs:
    sha256: frozenset[str]
    runtimes: frozenset[str]
    base_specs: frozenset[tuple[str, str, str, str]]  # (os, release, arch, variant)
    buildroot_specs: frozenset[tuple[str, str]]  # (os, release)


def needs(family: Family | None, lock: Lock | None) -> Needs:
    """What ``family`` and ``lock`` need from the cache (no I/O beyond the files given)."""

    sha = frozenset(a.sha256 for a in (lock.artifacts.values() if lock else ()) if a.sha256)
    runtimes: set[str] = set()
    bases: set[tuple[str, str, str, str]] = set()
    roots: set[tuple[str, str]] = set()
    host = host_arch()  # the runtimes this machine builds (native, or cross from here)
    if family is not None and lock is not None:
        for tag in family.tags:
            if not tag.buildable or tag.python is None:
                continue
            distro = tag.distro
            roots.add((distro.os, distro.release))
            for arch in tag.arches or family.arches:
                bases.add((distro.os, distro.release, arch, tag.variant))
                if tag.variant == "distroless":
                    bases.add((distro.os, distro.release, arch, "regular"))
                artifact = lock.artifacts.get(cpython_name(tag.version))
                if artifact is None or artifact.sha256 is None:
                    continue
                for profile in PROFILES:
                    with contextlib.suppress(BinkError):
                        runtimes.add(runtime_key(runtime_spec(tag, arch, lock, profile), host))
    return Needs(sha, frozenset(runtimes), frozenset(bases), frozenset(roots))


def _record(entry: Path, name: str) -> dict[str, object]:
    try:
        data = read_json(entry / name)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# -- the inventory ------------------------------------------------------------------------


def inventory(root: Path, need: Needs | None = None) -> list[Item]:
    """Every removable item under the cache ``root``, sized, and marked needed or busy."""
    need = need or Needs(frozenset(), frozenset(), frozenset(), frozenset())
    seen: set[tuple[int, int]] = set()
    items: list[Item] = []

    def add(
        kind: str,
        path: Path,
        *,
        needed: bool = False,
        busy: bool = False,
        used: Path | None = None,
    ) -> None:
        # an entry's age is the time it was last used (its pin file), else made
        stamp = max(_mtime(path), _mtime(used)) if used is not None else _mtime(path)
        items.append(Item(kind, path, _disk_size(path, seen), stamp, needed, busy))

    # needed first, so hard links shared with other entries are counted there
    kept_entries = _kept_newest(root, need)
    keep_layers: set[str] = set()
    for path in kept_entries:
        rec = _record(path, "record.json")
        if rec.get("sha256"):
            keep_layers.add(f"sha256:{rec['sha256']}")
    for key in need.runtimes:
        rec = _record(root / RUNTIMES.name / key, "record.json")
        if rec.get("sha256"):
            keep_layers.add(f"sha256:{rec['sha256']}")

    for keyed in ENTRY_KINDS:
        folder = root / keyed.name
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            partial = _PARTIAL.match(entry.name)
            if partial:
                busy = not _lock_free(folder / f".lock-{partial.group(2)}")
                add("tmp", entry, busy=busy)
                continue
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            use = folder / f".use-{entry.name}"
            busy = not _lock_free(use)  # a build is using it
            needed = _needed(keyed, entry, need, kept_entries, keep_layers)
            add(keyed.name, entry, needed=needed, busy=busy, used=use)

    sha_dir = root / "sha256"
    if sha_dir.is_dir():
        for entry in sorted(sha_dir.iterdir()):
            if entry.name.startswith(".tmp-"):
                label = entry.name.split("-")[1]
                busy = len(label) == 64 and not _lock_free(sha_dir / f".lock-{label}")
                add("tmp", entry, busy=busy)
            elif not entry.name.startswith("."):
                add("sha256", entry, needed=entry.name in need.sha256)

    work = root / "work"
    if work.is_dir():
        for entry in sorted(work.iterdir()):
            found = _WORK.match(entry.name)
            busy = found is not None and not _lock_free(
                root / RUNTIMES.name / f".lock-{found.group(1)}"
            )
            add("work", entry, busy=busy)
    for kind in ("logs", "verify-pycache"):
        folder = root / kind
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                # a log being written belongs to a build in progress: keep the last hour's
                add(kind, entry, busy=kind == "logs" and time.time() - _mtime(entry) < 3600)
    known = {*KINDS, *KEYED}
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        if entry.name not in known:
            add("other", entry, needed=True)  # not ours to remove
    return items


def _kept_newest(root: Path, need: Needs) -> set[Path]:
    """The newest base and build root of each spec the family needs."""
    newest: dict[tuple[str, ...], tuple[float, Path]] = {}
    for kind in ENTRY_KINDS:
        if kind.keep not in (Keep.NEWEST_BASE, Keep.NEWEST_BUILDROOT):
            continue
        folder = root / kind.name
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            rec = _record(entry, kind.record)
            if kind.keep is Keep.NEWEST_BASE:
                fields = ("os", "release", "arch", "variant")
                spec = tuple(str(rec.get(f)) for f in fields)
                wanted = spec in need.base_specs
            else:
                spec = tuple(str(rec.get(f)) for f in ("os", "release", "host_arch"))
                wanted = spec[:2] in need.buildroot_specs
            if wanted:
                stamp = _mtime(entry)
                if (kind.name, *spec) not in newest or newest[(kind.name, *spec)][0] < stamp:
                    newest[(kind.name, *spec)] = (stamp, entry)
    return {path for _, path in newest.values()}


def _needed(
    kind: EntryKind, entry: Path, need: Needs, kept_entries: set[Path], keep_layers: set[str]
) -> bool:
    """Whether the family needs ``entry``, by what keeps its kind alive."""
    match kind.keep:
        case Keep.NEWEST_BASE | Keep.NEWEST_BUILDROOT:
            return entry in kept_entries
        case Keep.RUNTIME_KEY:
            return entry.name in need.runtimes
        case Keep.KEPT_LAYER:
            return str(_record(entry, kind.record).get("diff_id")) in keep_layers
        case Keep.KEPT_BASE_AND_RUNTIME:
            meta = _record(entry, kind.record)
            return {str(meta.get("base")), str(meta.get("runtime"))} <= keep_layers
        case Keep.PINNED_FILES:
            return _files_layer_needed(entry / "layer.tar", need.sha256)
        case _:
            assert_never(kind.keep)


def _files_layer_needed(tar: Path, pinned: frozenset[str]) -> bool:
    """A files layer is needed when every file in it is a pinned input."""
    try:
        with tarfile.open(tar) as archive:
            hashes = []
            for member in archive.getmembers():
                if member.isfile():
                    handle = archive.extractfile(member)
                    if handle is None:
                        return False
                    hashes.append(sha256_stream(handle)[0])
    except (OSError, tarfile.TarError):
        return False
    return bool(hashes) and all(h in pinned for h in hashes)


# -- prune ---------------------------------------------------------------------------------


def select(
    items: list[Item], *, older_than: float | None, max_bytes: int | None, now: float
) -> list[Item]:
    """The items to remove: unneeded and idle; by age, then oldest first to the budget."""
    candidates = [i for i in items if not i.needed and not i.busy]
    if older_than is None and max_bytes is None:
        return sorted(candidates, key=lambda i: i.mtime)
    doomed: list[Item] = []
    if older_than is not None:
        doomed = [i for i in candidates if now - i.mtime >= older_than]
    if max_bytes is not None:
        total = sum(i.size for i in items) - sum(i.size for i in doomed)
        for item in sorted(candidates, key=lambda i: i.mtime):
            if total <= max_bytes:
                break
            if item not in doomed:
                doomed.append(item)
                total -= item.size
    return sorted(doomed, key=lambda i: i.mtime)


def remove(item: Item, root: Path) -> bool:
    """Remove one item under its builder's lock and its users' lock (skipped when a
    builder or a build using the entry holds one)."""
    lock = _lock_of(item, root)
    with contextlib.ExitStack() as stack:
        for path in (lock, _use_lock_of(item)):
            if path is not None and not stack.enter_context(_holding(path)):
                return False
        if item.path.is_dir() and not item.path.is_symlink():
            remove_tree(item.path, error=BuildError)
        else:
            with contextlib.suppress(FileNotFoundError):
                item.path.unlink()
    return True


def _use_lock_of(item: Item) -> Path | None:
    """The lock builds hold (shared) on an entry they use (store.Store.lookup)."""
    if item.kind in KEYED:
        return item.path.parent / f".use-{item.path.name}"
    return None


def _lock_of(item: Item, root: Path) -> Path | None:
    name = item.path.name
    parent = item.path.parent
    partial = _PARTIAL.match(name)
    if partial:
        return parent / f".lock-{partial.group(2)}"
    if item.kind in KEYED:
        return parent / f".lock-{name}"
    if item.kind == "sha256":
        return parent / f".lock-{name}"
    found = _WORK.match(name)
    if item.kind == "work" and found:
        return root / RUNTIMES.name / f".lock-{found.group(1)}"
    return None


# -- verify --------------------------------------------------------------------------------


def verify_entries(root: Path) -> list[str]:
    """Every complete cache entry whose content does not match its record: one line each.

    Fetched inputs against their sha256 name; every registered kind of keyed entry
    by its own check (store.ENTRY_KINDS); an entry missing its record or payload is
    incomplete (entries are renamed into place only once complete, so this is
    corruption, not a build in progress).
    """
    bad = [f"{e.path}: content does not match its sha256" for e in cache_verify(root)]
    for kind in ENTRY_KINDS:
        folder = root / kind.name
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            bad.extend(kind.problems(entry))
    return bad
