"""The fetch cache: every external artifact, content addressed and verified.

Layout under the cache root (``Settings.cache_dir``, see :mod:`bink_python.settings`)::

    sha256/<hex>              a verified artifact; its name is its sha256
    sha256/.lock-<hex>        flock serializing fetchers of one artifact
    sha256/.tmp-<hex>-<rand>  a download in progress; never read, removed by prune

``fetch_artifact(artifact, cache)`` is the one way later stages obtain an external
input: it refuses unpinned artifacts (``PolicyError``), re-hashes a cached file
before returning it (a file that no longer matches is removed and fetched again;
hashing a 25 MB tarball costs a fraction of a second, against a build of minutes),
and otherwise downloads it: each URL in order, bounded retries with timeouts,
streamed to a temporary file in the same directory, size and sha256 checked, fsync,
atomic rename. The hash is what is trusted, never the host. ``offline=True`` never
opens a connection.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import BinkError, FetchError
from ..host import mirrors
from ..host.progress import SILENT, Progress
from ..host.text import human
from ..settings import Mirrors, Settings, Upstream
from ..store.store import sha256_stream
from .cache import Cache, CacheEntry, as_cache
from .lockfile import DEBIAN_SCHEME, Artifact, require_pinned

CHUNK = 1 << 16
USER_AGENT = "bink-python (+https://github.com/binkhq/python)"


@dataclass(frozen=True)
class FetchSettings:
    """Network behaviour: per-read timeout, attempts per URL, pause between attempts, and
    where the archive mirror and upstream's sites are."""

    timeout: float = 30.0
    attempts: int = 3
    backoff: float = 1.0
    mirrors: Mirrors = field(default_factory=Mirrors)
    upstream: Upstream = field(default_factory=Upstream)

    @classmethod
    def of(cls, settings: Settings, *, mirror_option: bool = True) -> FetchSettings:
        """The defaults, with what ``settings`` sets (``$BINK_PYTHON_FETCH_TIMEOUT`` /
        ``_ATTEMPTS``, mirrors, upstream URLs); without ``mirror_option``, ``--mirror``
        (a build's archive for bases and build roots) leaves the fetches alone."""
        timeout, attempts = settings.fetch.checked(cls.timeout, cls.attempts)
        mirrors = settings.mirrors if mirror_option else settings.mirrors.machine()
        return cls(timeout=timeout, attempts=attempts, mirrors=mirrors, upstream=settings.upstream)


class _UrlFailed(Exception):
    """One URL failed; ``retry`` says whether trying it again may help."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


def resolve_url(url: str, settings: FetchSettings | None = None) -> str:
    """A lock URL as a network URL (``debian:<path>`` -> the machine's Debian mirror)."""
    settings = settings or FetchSettings()
    if url.startswith(DEBIAN_SCHEME):
        return f"{mirrors.debian_mirror(settings.mirrors)}/{url[len(DEBIAN_SCHEME) :]}"
    return url


class _Meter:
    """Download progress: a live line on a terminal, one summary line otherwise."""

    def __init__(self, progress: Progress, what: str, total: int | None) -> None:
        self.progress = progress
        self.what = what
        self.total = total
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, n: int) -> None:
        self.done += n
        if not self.progress.interactive:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-6)
        total = f"/{human(self.total, decimal=True)}" if self.total else ""
        self.progress.note(
            self.what, f"{human(self.done, decimal=True)}{total}  {human(rate, decimal=True)}/s"
        )

    def finish(self, url: str) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        self.progress.note(self.what, None)
        done, rate = human(self.done, decimal=True), human(self.done / elapsed, decimal=True)
        self.progress.info(f"    fetched {self.what} ({done}, {rate}/s) from {url}")


def _describe(exc: BaseException) -> tuple[str, bool]:
    """A short reason for a network failure, and whether a retry may help."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}", exc.code >= 500 or exc.code == 429
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, socket.gaierror):
            return f"cannot resolve host ({reason.strerror})", False
        if isinstance(reason, TimeoutError | socket.timeout):
            return "timed out", True
        if isinstance(reason, OSError) and reason.strerror:
            return reason.strerror.lower(), True
        return str(reason), True
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out", True
    if isinstance(exc, http.client.IncompleteRead):
        return f"truncated body ({len(exc.partial)} more bytes before the connection closed)", True
    if isinstance(exc, http.client.HTTPException | ConnectionError):
        return f"connection failed ({type(exc).__name__})", True
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower(), True
    return str(exc), True


@contextlib.contextmanager
def _open(url: str, settings: FetchSettings) -> Iterator[http.client.HTTPResponse]:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=settings.timeout)
    except (OSError, http.client.HTTPException) as exc:
        reason, retry = _describe(exc)
        raise _UrlFailed(reason, retry=retry) from None
    with response:
        yield response


def _try_urls(
    urls: Sequence[str],
    settings: FetchSettings,
    what: str,
    attempt_one: Callable[[str], Path | bytes],
) -> tuple[str, Path | bytes]:
    failures: list[str] = []
    for url in urls:
        try:
            real = resolve_url(url, settings)
        except BinkError as exc:
            failures.append(f"{url}: {exc}")
            continue
        for attempt in range(1, settings.attempts + 1):
            try:
                return url, attempt_one(real)
            except _UrlFailed as exc:
                if not exc.retry or attempt == settings.attempts:
                    suffix = f" after {attempt} attempts" if attempt > 1 else ""
                    failures.append(f"{url}: {exc.reason}{suffix}")
                    break
                time.sleep(settings.backoff * attempt)
    raise FetchError(f"cannot fetch {what}: " + "; ".join(failures))


def fetch_bytes(
    urls: Sequence[str],
    *,
    what: str,
    offline: bool = False,
    settings: FetchSettings | None = None,
    max_bytes: int = 16 << 20,
) -> bytes:
    """A small document (API JSON, checksum file), trying ``urls`` in order."""
    settings = settings or FetchSettings()
    if offline:
        raise FetchError(f"cannot fetch {what}: --offline given (no network access)")

    def small(url: str) -> bytes:
        with _open(url, settings) as response:
            try:
                data = response.read(max_bytes + 1)
            except (OSError, http.client.HTTPException) as exc:
                reason, retry = _describe(exc)
                raise _UrlFailed(reason, retry=retry) from None
        if len(data) > max_bytes:
            raise _UrlFailed(f"response larger than {max_bytes} bytes", retry=False)
        return data

    _, data = _try_urls(urls, settings, what, small)
    assert isinstance(data, bytes)
    return data


# ---------------------------------------------------------------- downloads


def download(
    urls: Sequence[str],
    cache: Cache | Path,
    *,
    what: str,
    sha256: str | None,
    size: int | None = None,
    settings: FetchSettings | None = None,
    progress: Progress = SILENT,
) -> CacheEntry:
    """Download into the cache, verifying ``size``/``sha256`` when given.

    With ``sha256=None`` the bytes are trusted on first use: the caller pins what
    it gets. A wrong size or hash fails that URL (the next one is tried); nothing
    unverified ever gets an entry's name.
    """
    settings = settings or FetchSettings()
    store = as_cache(cache)
    label = sha256 or "new"

    def big(url: str) -> Path:
        handle, tmp = store.temp(label)
        try:
            with handle:
                got_sha, got_size = _stream(url, handle, size, what, settings, progress)
                handle.flush()
                os.fsync(handle.fileno())
            if size is not None and got_size != size:
                raise _UrlFailed(f"size {got_size} bytes, expected {size}", retry=False)
            if sha256 is not None and got_sha != sha256:
                raise _UrlFailed(f"sha256 {got_sha}, expected {sha256}", retry=False)
            return store.commit(tmp, got_sha)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    _, path = _try_urls(urls, settings, what, big)
    assert isinstance(path, Path)
    return CacheEntry(path.name, path.stat().st_size, path)


class _Bounded:
    """A download's destination: refuses bytes past the expected size, moves the meter."""

    def __init__(self, out: BinaryIO, size: int | None, meter: _Meter) -> None:
        self.out, self.size, self.meter = out, size, meter
        self.got = 0

    def write(self, chunk: bytes) -> int:
        self.got += len(chunk)
        if self.size is not None and self.got > self.size:
            raise _UrlFailed(f"more than the expected {self.size} bytes", retry=False)
        self.out.write(chunk)
        self.meter.update(len(chunk))
        return len(chunk)


def _stream(
    url: str,
    out: BinaryIO,
    size: int | None,
    what: str,
    settings: FetchSettings,
    progress: Progress,
) -> tuple[str, int]:
    with _open(url, settings) as response:
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if size is not None and length is not None and length != size:
            raise _UrlFailed(f"size {length} bytes (Content-Length), expected {size}", retry=False)
        meter = _Meter(progress, what, length or size)
        try:
            sha, got = sha256_stream(response, _Bounded(out, size, meter), CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            reason, retry = _describe(exc)
            raise _UrlFailed(reason, retry=retry) from None
        if length is not None and got != length:
            raise _UrlFailed(f"truncated body ({got} of {length} bytes)", retry=True)
    meter.finish(url)
    return sha, got


def fetch_artifact(
    artifact: Artifact,
    cache: Cache | Path,
    *,
    offline: bool = False,
    progress: Progress = SILENT,
    settings: FetchSettings | None = None,
) -> Path:
    """The verified file of a pinned artifact (``<cache>/sha256/<hex>``)."""
    settings = settings or FetchSettings()
    sha = require_pinned(artifact)
    store = as_cache(cache)
    with store.locked(sha):
        had = store.path(sha).is_file()
        path = store.verified(sha)
        if path is not None:
            if artifact.size is not None and path.stat().st_size != artifact.size:
                raise FetchError(
                    f"{artifact.name}: cached file matches sha256 {sha} but images.lock says "
                    f"size {artifact.size}; the lock is inconsistent: re-run `bink-python lock`"
                )
            return path
        if had:
            progress.warn(
                f"cache entry {store.path(sha)} for {artifact.name} was corrupted; refetching"
            )
        if offline:
            raise FetchError(
                f"{artifact.name} ({artifact.filename}) is not in the cache {store.dir} and "
                "--offline was given: seed it with "
                f"`bink-python cache add FILE --for {artifact.name}`"
            )
        entry = download(
            artifact.urls,
            store,
            what=artifact.name,
            sha256=sha,
            size=artifact.size,
            settings=settings,
            progress=progress,
        )
        return entry.path
