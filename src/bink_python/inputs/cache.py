"""The fetch cache: files named by their sha256, and the ``cache add/ls/verify`` commands."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from ..errors import FetchError
from ..store.store import flocked, fsync_dir, sha256_file, sha256_stream
from .lockfile import Given, Lock


@dataclass(frozen=True)
class CacheEntry:
    sha256: str
    size: int
    path: Path


class Cache:
    """Content-addressed files under ``<root>/sha256``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "sha256"

    def _ensure(self) -> Path:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FetchError(
                f"cache directory {self.dir} is not writable: {exc.strerror}"
            ) from None
        return self.dir

    def path(self, sha256: str) -> Path:
        return self.dir / sha256

    @contextlib.contextmanager
    def locked(self, sha256: str) -> Iterator[None]:
        """Serialize fetchers of one artifact across threads and processes."""
        with flocked(self._ensure() / f".lock-{sha256}"):
            yield

    def entries(self) -> list[CacheEntry]:
        if not self.dir.is_dir():
            return []
        found = []
        for path in sorted(self.dir.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            found.append(CacheEntry(path.name, path.stat().st_size, path))
        return found

    def verified(self, sha256: str) -> Path | None:
        """The entry if present and intact; a tampered entry is removed (and None)."""
        path = self.path(sha256)
        if not path.is_file():
            return None
        if sha256_file(path) == sha256:
            return path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return None

    def temp(self, label: str) -> tuple[BinaryIO, Path]:
        fd, name = tempfile.mkstemp(prefix=f".tmp-{label}-", dir=self._ensure())
        return os.fdopen(fd, "wb"), Path(name)

    def commit(self, tmp: Path, sha256: str) -> Path:
        """Move a verified temporary file into place (atomic, durable)."""
        final = self.path(sha256)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        fsync_dir(self.dir)
        return final

    def add_file(self, source: Path) -> CacheEntry:
        """Copy a local file into the cache (hash while copying)."""
        handle, tmp = self.temp("add")
        try:
            with handle, open(source, "rb") as src:
                sha, size = sha256_stream(src, handle)
                handle.flush()
                os.fsync(handle.fileno())
            with self.locked(sha):
                path = self.commit(tmp, sha)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        return CacheEntry(sha, size, path)


def as_cache(cache: Cache | Path) -> Cache:
    return cache if isinstance(cache, Cache) else Cache(cache)


# ---------------------------------------------------------------- cache commands


@dataclass(frozen=True)
class Added:
    entry: CacheEntry
    source: Path
    artifacts: tuple[str, ...]
    pinned: bool = False


def cache_add(
    files: Iterable[Path],
    cache: Cache | Path,
    *,
    lock_path: Path,
    for_: str | None = None,
    epoch: Given = None,
) -> list[Added]:
    """Seed the cache from local files; with ``for_``, pin or verify that artifact.

    A file named for an unpinned artifact pins it in the lock (its sha256 and
    size); for a pinned artifact it must match the pin, else nothing is added.
    """
    store = as_cache(cache)
    paths = list(files)
    if not paths:
        raise FetchError("cache add: give at least one FILE")
    for path in paths:
        if not path.is_file():
            raise FetchError(f"cache add: {path} is not a readable file")
    lock = Lock.load(lock_path) if (for_ or lock_path.exists()) else Lock(0, {})
    if for_ is not None:
        if len(paths) != 1:
            raise FetchError("cache add --for ARTIFACT takes exactly one FILE")
        artifact = lock.entry(for_)
        sha = sha256_file(paths[0])
        size = paths[0].stat().st_size
        if artifact.sha256 is not None and artifact.sha256 != sha:
            raise FetchError(
                f"{paths[0]} is not {for_}: its sha256 is {sha}, images.lock pins "
                f"{artifact.sha256}; nothing added"
            )
        if artifact.size is not None and artifact.size != size:
            raise FetchError(
                f"{paths[0]} is not {for_}: {size} bytes, images.lock pins {artifact.size}"
            )
        entry = store.add_file(paths[0])
        if entry.sha256 != sha:
            raise FetchError(f"{paths[0]} changed while it was being added; try again")
        changed = artifact.sha256 is None or artifact.size is None
        if changed:
            lock = lock.with_artifact(replace(artifact, sha256=sha, size=size), epoch=epoch)
            lock.write(lock_path)
        return [Added(entry, paths[0], (for_,), pinned=artifact.sha256 is None)]
    added = []
    for path in paths:
        entry = store.add_file(path)
        names = tuple(sorted(n for n, a in lock.artifacts.items() if a.sha256 == entry.sha256))
        added.append(Added(entry, path, names))
    return added


@dataclass(frozen=True)
class Listed:
    entry: CacheEntry
    artifacts: tuple[str, ...]


def cache_ls(cache: Cache | Path, lock: Lock | None) -> list[Listed]:
    """Every cache entry with the lock artifacts that reference it."""
    by_sha: dict[str, list[str]] = {}
    if lock is not None:
        for name, art in lock.artifacts.items():
            if art.sha256:
                by_sha.setdefault(art.sha256, []).append(name)
    return [Listed(e, tuple(sorted(by_sha.get(e.sha256, ())))) for e in as_cache(cache).entries()]


def cache_verify(cache: Cache | Path) -> list[CacheEntry]:
    """Entries whose content no longer matches their name (reported, not removed)."""
    return [e for e in as_cache(cache).entries() if sha256_file(e.path) != e.sha256]
