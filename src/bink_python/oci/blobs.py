"""Blob files checked against their digest, each file hashed at most once per process."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from ..store.store import sha256_file

#: Files verified in this process: (device, inode, size, mtime_ns) -> digest.
_VERIFIED: dict[tuple[int, int, int, int], str] = {}
_VERIFIED_LOCK = threading.Lock()


def _file_id(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def blob_ok(path: Path, digest: str, size: int | None = None) -> bool:
    """Whether ``path`` exists with content hashing to ``digest`` (and ``size``).

    The hash of a file is computed once per process and remembered by device, inode,
    size and mtime: hard links of one verified file (store entry, staging blob,
    output blob) cost one hash.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if size is not None and st.st_size != size:
        return False
    ident = _file_id(st)
    with _VERIFIED_LOCK:
        if _VERIFIED.get(ident) == digest:
            return True
    try:
        actual = "sha256:" + sha256_file(path)
    except FileNotFoundError:
        return False
    if actual != digest:
        return False
    with _VERIFIED_LOCK:
        _VERIFIED[ident] = digest
    return True


def remember(path: Path, digest: str) -> None:
    """Note a file just written and verified as ``digest``."""
    with contextlib.suppress(OSError), _VERIFIED_LOCK:
        _VERIFIED[_file_id(path.stat())] = digest
