"""The cache directory and its keyed, atomically committed build entries.

Layout under the cache root (``--cache-dir``, ``$BINK_PYTHON_CACHE`` or
``$XDG_CACHE_HOME/bink-python``: :attr:`bink_python.settings.Settings.cache_dir`)::

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
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from ..errors import ToolError


def cache_key(parts: Mapping[str, Any]) -> str:
    """A stable key (hex sha256, 32 chars) of everything that determines an entry."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


@contextlib.contextmanager
def flocked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) while the block runs."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


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
        with contextlib.suppress(OSError):
            os.utime(handle.fileno())  # when it was last used: ``cache prune --older-than``
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
        with flocked(self._kind_dir(kind) / f".lock-{key}"):
            yield

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


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


def sha256_stream(
    source: IO[bytes], sink: _Sink | None = None, chunk_size: int = 1 << 20
) -> tuple[str, int]:
    """(sha256 hex, size) of what ``source`` reads to its end, copied to ``sink`` if given."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: source.read(chunk_size), b""):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return sha256_stream(handle)[0]


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


@dataclass(frozen=True)
class Built:
    """What a stage returns for the entry it made or found: key, record, and which it was."""

    key: str
    record: dict[str, Any]  # the entry's JSON record
    cached: bool  # found in the store, not made by this call
