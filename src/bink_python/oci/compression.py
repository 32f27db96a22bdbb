"""Layer compression: gzip and zstd, deterministic, and the one place that reads layers back.

A layer blob is the deterministic layer tar compressed with one :data:`ALGORITHMS`
entry. Same tar, same algorithm, same library version: same bytes.

gzip
    libdeflate (through the ``deflate`` binding, pinned in pyproject: its bundled
    libdeflate decides the bytes) at level :data:`GZIP_LEVEL`, its highest: an ordinary
    RFC 1952 gzip member (mtime 0, no file name) that every client decompresses as fast
    as any other gzip, 4 to 5% smaller than zlib's level 6 (measured on the 3.13 layers:
    Debian 13 base 30.21 -> 28.74 MB, release runtime 16.40 -> 15.69 MB), at 5 to 6 MB/s
    (zlib -6: about 20 MB/s), paid once per layer: blobs are cached per diff_id. zlib -9
    saves only 0.4% over -6, and zopfli is 12x slower than libdeflate -12 for less. The
    binding's version and the level are in every cache key. libdeflate compresses a
    buffer, not a stream: the layer tar is mapped into memory (about 100 MB at most here).
zstd
    The ``zstandard`` binding (pinned in pyproject: its bundled libzstd decides the
    bytes; Python has no zstd in the standard library before 3.14) at level
    :data:`ZSTD_LEVEL` with a content checksum and the content size in the frame
    header, with a fixed number of worker threads (:data:`ZSTD_WORKERS`: the bytes of
    multi-threaded zstd depend on the parameters, and the worker count is kept one of
    them). libzstd's version, the level and the worker count are in every cache key.
    Why the library and not the ``zstd`` command: no host tool to install and pin per
    machine, the version is known to the process (cache key), and streaming with hashing
    stays in one pass.

The level is pinned: 19 is the highest level that needs no "ultra" window (8 MiB,
which zstd decoders accept by default) and made the Debian 13 base layer 31% smaller
than gzip -6 (21.3 MB against 31.1 MB; level 12: 24.3 MB). It is slow to compress
(a minute or more for a base layer), paid once per layer: blobs are cached per diff_id.

Media types are the OCI image-spec v1.1 layer types. An image index may carry a gzip
and a zstd instance of the same image side by side; the zstd one carries the
containers/image annotation :data:`ANNOTATION_ZSTD` and comes after every gzip one, so
clients that choose by that annotation take zstd and the others (which take the first
entry of their platform) take gzip.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import mmap
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

import deflate
import zstandard

from ..errors import BuildError
from ..host import proc
from ..store.store import HashingWriter, sha256_stream
from .types import MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_LAYER_ZSTD

GZIP = "gzip"
ZSTD = "zstd"
#: Known algorithms, in the order instances are listed in an index (gzip first).
ALGORITHMS = (GZIP, ZSTD)

GZIP_LEVEL = 12
ZSTD_LEVEL = 19
ZSTD_WORKERS = 2

MEDIA_TYPES = {GZIP: MEDIA_LAYER_GZIP, ZSTD: MEDIA_LAYER_ZSTD}

#: Index-entry annotation of a zstd instance (containers/image's name and value).
ANNOTATION_ZSTD = "io.github.containers.compression.zstd"

_CHUNK = 1 << 20


def check_algorithm(name: str) -> None:
    if name not in ALGORITHMS:
        raise BuildError(f"unknown layer compression {name!r}: expected one of gzip, zstd")


def settings(name: str) -> dict[str, object]:
    """What determines the compressed bytes besides the tar (goes into cache keys)."""
    check_algorithm(name)
    if name == GZIP:
        return {"encoder": "libdeflate", "level": GZIP_LEVEL, "deflate": deflate.__version__}
    return {
        "algorithm": ZSTD,
        "level": ZSTD_LEVEL,
        "libzstd": ".".join(str(x) for x in zstandard.ZSTD_VERSION),
        "workers": ZSTD_WORKERS,
        "checksum": True,
        "content_size": True,
    }


def instance_annotations(name: str) -> dict[str, str]:
    """Annotations of an index entry whose layers use ``name``."""
    check_algorithm(name)
    return {ANNOTATION_ZSTD: "true"} if name == ZSTD else {}


def algorithm_of(media_type: str) -> str:
    """``gzip``/``zstd`` (or ``none`` for an uncompressed tar) from a layer media type."""
    for name, media in MEDIA_TYPES.items():
        if media_type == media:
            return name
    if media_type == MEDIA_LAYER_TAR:
        return "none"
    raise BuildError(f"unsupported layer media type {media_type!r}")


def compress_file(source: Path, dest: Path, name: str) -> tuple[str, int, str]:
    """Compress ``source`` into ``dest`` with ``name``.

    Returns (sha256 digest of the blob, blob size, sha256 digest of the source read),
    so a caller can check the source against the digest it expects in the same pass.
    OSError (missing source, disk full) is left to the caller.
    """
    check_algorithm(name)
    if name == GZIP and source.stat().st_size > GZIP_IN_PROCESS:
        return _gzip_in_worker(source, dest)
    with open(source, "rb") as src, open(dest, "wb") as raw:
        writer = HashingWriter(raw)
        if name == GZIP:
            with _mapped(src) as data:
                source_hex = hashlib.sha256(data).hexdigest()
                writer.write(bytes(deflate.gzip_compress(data, GZIP_LEVEL)))
        else:
            compressor = zstandard.ZstdCompressor(
                level=ZSTD_LEVEL,
                write_checksum=True,
                write_content_size=True,
                threads=ZSTD_WORKERS,
            )
            with compressor.stream_writer(
                writer,  # type: ignore[arg-type]
                size=os.fstat(src.fileno()).st_size,
                closefd=False,
            ) as zst:
                source_hex = sha256_stream(src, zst, _CHUNK)[0]
        raw.flush()
        os.fsync(raw.fileno())
    return writer.digest(), writer.size, "sha256:" + source_hex


#: Larger layers are gzipped in a child process: libdeflate holds the GIL for the whole
#: buffer (seconds for a base layer), during which no signal handler or progress runs.
GZIP_IN_PROCESS = 4 << 20

#: The child: the same binding and level, so the same bytes as in this process.
_GZIP_WORKER = (
    "import sys, deflate\n"
    "with open(sys.argv[1], 'rb') as src:\n"
    "    data = src.read()\n"
    "with open(sys.argv[2], 'wb') as out:\n"
    "    out.write(deflate.gzip_compress(data, int(sys.argv[3])))\n"
    "    out.flush()\n"
    "    __import__('os').fsync(out.fileno())\n"
)


def _gzip_in_worker(source: Path, dest: Path) -> tuple[str, int, str]:
    """:func:`compress_file` for gzip, the compression in a registered child process that
    a Ctrl-C or SIGTERM stops at once; this process hashes the source meanwhile."""
    argv = [sys.executable, "-I", "-c", _GZIP_WORKER, str(source), str(dest), str(GZIP_LEVEL)]
    worker = proc.spawn(argv, kind="compress")
    if not worker.ok:
        if worker.timed_out:
            raise BuildError(f"compressing {source} timed out after {worker.timeout:.0f}s")
        raise BuildError(f"compressing {source} failed: {proc.tail(worker.stderr)}")
    with open(source, "rb") as src:
        source_hex = sha256_stream(src, chunk_size=_CHUNK)[0]
    with open(dest, "rb") as blob:
        blob_hex, size = sha256_stream(blob, chunk_size=_CHUNK)
    return "sha256:" + blob_hex, size, "sha256:" + source_hex


@contextmanager
def _mapped(src: IO[bytes]) -> Iterator[bytes | mmap.mmap]:
    """The whole of the open file ``src``, mapped read-only (an empty file maps nothing).

    Layer tars are written once and renamed into place, never changed in place; one
    that grew since its diff_id was recorded hashes differently and is refused by the
    caller."""
    if os.fstat(src.fileno()).st_size == 0:
        yield b""
        return
    with mmap.mmap(src.fileno(), 0, access=mmap.ACCESS_READ) as data:
        yield data


def compress_error(path: Path, exc: OSError) -> BuildError:
    if exc.errno == errno.ENOSPC:
        return BuildError(f"disk full while compressing {path}: free space")
    return BuildError(f"cannot compress {path}: {exc.strerror or exc}")


@contextmanager
def open_layer(path: Path, media_type: str) -> Iterator[IO[bytes]]:
    """The uncompressed tar stream of a layer blob of ``media_type`` (read sequentially)."""
    name = algorithm_of(media_type)
    with open(path, "rb") as raw:
        if name == GZIP:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                yield cast(IO[bytes], gz)
        elif name == ZSTD:
            reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)
            with reader:
                yield io.BufferedReader(reader, _CHUNK)
        else:
            yield raw


#: What reading a truncated or corrupt layer blob raises (gzip, zstd, or the file).
UNPACK_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, zstandard.ZstdError)


def uncompressed_digest(path: Path, media_type: str) -> tuple[str, int]:
    """(sha256 digest, size) of a layer blob's uncompressed tar: its diff_id and size."""
    with open_layer(path, media_type) as stream:
        hexdigest, size = sha256_stream(stream, chunk_size=_CHUNK)
    return "sha256:" + hexdigest, size
