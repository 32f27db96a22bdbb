"""The cache directory and its keyed, atomically committed build entries.

Layout under the cache root (``--cache-dir``, ``$BINK_PYTHON_CACHE`` or
``$XDG_CACHE_HOME/bink-python``)::

    sha256/<hex>              fetched artifacts, content addressed (fetch.py)
    <kind>/<key>/...          build outputs (bases, runtimes, buildroots, layers)
    <kind>/.tmp-<key>-<rand>  entries being built; never read
    <kind>/.lock-<key>        held (exclusive) by the one process building the entry
    <kind>/.use-<key>         held (shared) by every process using the entry

An entry is complete only once its directory has been renamed into place, so an
interrupted build never leaves something that looks like a cache hit. An entry a
build has looked up stays pinned (``.use-<key>``) until the build ends: ``cache
prune`` removes an entry only when it can take both locks without waiting.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import ToolError

CACHE_ENV = "BINK_PYTHON_CACHE"


_SELECTED: list[Path] = []


def select_cache_root(cli_value: str | os.PathLike[str] | None) -> None:
    """Make ``--cache-dir`` the root every later :func:`cache_root` call returns.

    Stages that look the root up themselves (verify's bytecode cache) follow the
    command line this way; None clears the selection.
    """
    _SELECTED.clear()
    if cli_value:
        _SELECTED.append(Path(cli_value).expanduser().resolve())


def cache_root(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the cache root: option, then ``--cache-dir`` of this command, then the
    environment, then the user cache dir."""
    if cli_value:
        return Path(cli_value).expanduser().resolve()
    if _SELECTED:
        return _SELECTED[0]
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return (base / "bink-python").resolve()


def cache_key(parts: Mapping[str, Any]) -> str:
    """A stable key (hex sha256, 32 chars) of everything that determines an entry."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


class Store:
    """Keyed build entries under one cache root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pins: dict[tuple[str, str], IO[bytes]] = {}

    def _kind_dir(self, kind: str) -> Path:
        path = self.root / kind
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ToolError(f"cache directory {path} is not writable: {exc.strerror}") from exc
        return path

    def path(self, kind: str, key: str) -> Path:
        """Where the complete entry lives (it may not exist yet)."""
        return self.root / kind / key

    def lookup(self, kind: str, key: str) -> Path | None:
        """The complete entry, pinned against ``cache prune`` until :meth:`close`; or None.

        The pin is a shared flock on ``.use-<key>`` (released at the latest when the
        process ends, however it ends). Taking it waits while a prune removes the
        entry, which is then gone: None, and the caller builds it again.
        """
        path = self.path(kind, key)
        if (kind, key) in self._pins:
            return path if path.is_dir() else None
        if not path.is_dir():
            return None
        handle = open(self._kind_dir(kind) / f".use-{key}", "a+b")  # noqa: SIM115 (kept open)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        except BaseException:
            handle.close()
            raise
        if not path.is_dir():
            handle.close()
            return None
        self._pins[(kind, key)] = handle
        return path

    def close(self) -> None:
        """Release every pin this store holds (entries become prunable again)."""
        pins, self._pins = self._pins, {}
        for handle in pins.values():
            handle.close()

    @contextlib.contextmanager
    def lock(self, kind: str, key: str) -> Iterator[None]:
        """Serialize builders of one entry across processes (flock on a side file)."""
        lock_path = self._kind_dir(kind) / f".lock-{key}"
        with open(lock_path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def building(self, kind: str, key: str) -> Iterator[Path]:
        """Yield an empty temporary directory; on success it becomes the entry.

        On any exception the temporary directory is removed and the previous
        entry (if any) is left untouched.
        """
        kind_dir = self._kind_dir(kind)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=kind_dir))
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        final = self.path(kind, key)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{key}-", dir=kind_dir))
            os.rename(final, old / "entry")
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
        fsync_dir(kind_dir)
        self.lookup(kind, key)  # pinned before the builder's lock is let go

    def entries(self, kind: str) -> list[Path]:
        """Complete entries of one kind, sorted."""
        path = self.root / kind
        if not path.is_dir():
            return []
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, prefix: str | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, data: Any) -> None:
    """Pretty, sorted, newline-terminated JSON written atomically (records, not OCI blobs)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class HashingWriter:
    """A write-only file object that hashes (sha256) and counts what passes through."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def flush(self) -> None:
        self.target.flush()

    def digest(self) -> str:
        """``sha256:<hex>`` of the bytes written so far."""
        return "sha256:" + self.hasher.hexdigest()


# -- the kinds of keyed entries -------------------------------------------------------------


class Keep(enum.Enum):
    """What keeps an entry of a kind alive in ``cache prune`` (the family's needs)."""

    #: the newest entry of each (OS, release, arch, variant) the family builds on
    NEWEST_BASE = "the newest base of each (os, release, arch, variant) the family uses"
    #: the newest entry of each (OS, release, host arch) the family compiles in
    NEWEST_BUILDROOT = "the newest build root of each (os, release) the family compiles in"
    #: an entry whose key is the runtime key of a buildable (tag, arch, profile)
    RUNTIME_KEY = "the runtime of every buildable (tag, arch) in both profiles"
    #: an entry whose ``meta.json`` names the diff_id of a kept base or runtime
    KEPT_LAYER = "the compressed layers of kept bases and runtimes"
    #: an entry whose ``meta.json`` names a kept base and a kept runtime
    KEPT_BASE_AND_RUNTIME = "the loader cache of a kept base and runtime"
    #: an entry whose every file is a pinned input
    PINNED_FILES = "a files layer made only of pinned inputs"


@dataclass(frozen=True)
class Payload:
    """A payload file checked against the hash (and size) its record names."""

    record: str  # the JSON record in the entry
    name: str  # the payload file
    hash_field: str  # the record's field holding the hex sha256 (``sha256:`` prefix allowed)
    size_field: str | None  # the record's field holding the payload's size, if any


@dataclass(frozen=True)
class EntryKind:
    """One kind of keyed store entry: its directory, how to check it, what keeps it."""

    name: str  # the directory under the cache root
    keep: Keep
    record: str  # the JSON record every complete entry carries
    payload: Payload | None = None  # checked against its recorded sha256
    must_exist: tuple[str, ...] = ()  # further paths a complete entry has
    magic: tuple[str, bytes] | None = None  # (file, the bytes it starts with)

    def problems(self, entry: Path) -> list[str]:
        """What is wrong with the complete entry ``entry`` (empty when it is sound)."""
        try:
            record = read_json(entry / self.record)
            if not isinstance(record, dict):
                raise ValueError(record)
        except (OSError, ValueError):
            return [f"{entry}: {self.record} missing or unreadable"]
        out = [
            f"{entry}: {name} missing" for name in self.must_exist if not (entry / name).exists()
        ]
        if self.magic is not None:
            name, magic = self.magic
            try:
                with open(entry / name, "rb") as handle:
                    head = handle.read(len(magic))
            except OSError:
                out.append(f"{entry}: {name} missing")
            else:
                if head != magic:
                    out.append(f"{entry}: {name} is not what it should be (bad header)")
        if self.payload is not None:
            out.extend(self._payload_problems(entry, record, self.payload))
        return out

    @staticmethod
    def _payload_problems(entry: Path, record: dict[str, Any], payload: Payload) -> list[str]:
        try:
            expected = str(record[payload.hash_field]).removeprefix("sha256:")
        except KeyError:
            return [f"{entry}: {payload.record} names no {payload.hash_field}"]
        size = record.get(payload.size_field) if payload.size_field else None
        target = entry / payload.name
        try:
            actual_size = target.stat().st_size
        except FileNotFoundError:
            return [f"{entry}: {payload.name} missing"]
        if isinstance(size, int) and size != actual_size:
            return [f"{entry}: {payload.name} is {actual_size} bytes, recorded {size}"]
        if sha256_file(target) != expected:
            return [f"{entry}: {payload.name} does not match its recorded sha256"]
        return []


BASES = EntryKind(
    "bases",
    Keep.NEWEST_BASE,
    "record.json",
    Payload("record.json", "rootfs.tar", "sha256", "size"),
)
RUNTIMES = EntryKind(
    "runtimes",
    Keep.RUNTIME_KEY,
    "record.json",
    Payload("record.json", "runtime.tar", "sha256", "size"),
)
BUILDROOTS = EntryKind(
    "buildroots", Keep.NEWEST_BUILDROOT, "buildroot.json", must_exist=("root/usr/bin",)
)
GZIP_LAYERS = EntryKind(
    "gzip-layers",
    Keep.KEPT_LAYER,
    "meta.json",
    Payload("meta.json", "layer.tar.gz", "digest", "size"),
)
ZSTD_LAYERS = EntryKind(
    "zstd-layers",
    Keep.KEPT_LAYER,
    "meta.json",
    Payload("meta.json", "layer.tar.zst", "digest", "size"),
)
FILES_LAYERS = EntryKind(
    "files-layers",
    Keep.PINNED_FILES,
    "meta.json",
    Payload("meta.json", "layer.tar", "diff_id", None),
)
#: glibc's loader cache records no hash of itself: its header is what can be checked.
LD_CACHES = EntryKind(
    "ld-caches",
    Keep.KEPT_BASE_AND_RUNTIME,
    "meta.json",
    magic=("ld.so.cache", b"glibc-ld.so.cache1.1"),
)

#: Every kind of keyed entry, in report order: ``cache du``, ``verify`` and ``prune`` walk this.
ENTRY_KINDS = (BASES, RUNTIMES, BUILDROOTS, GZIP_LAYERS, ZSTD_LAYERS, FILES_LAYERS, LD_CACHES)
