"""Deterministic tar archives: the one way every stage turns a tree into bytes.

Entries are sorted, owners are numeric (no user or group names), modification
times are clamped to ``SOURCE_DATE_EPOCH``, no access or change times are written
and hard links inside the tree are kept as links. The same tree gives the same
bytes, whichever machine or day writes it.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ..store.store import HashingWriter

#: Members under these directories are never archived (their directories are).
VIRTUAL_DIRS = ("dev", "proc", "sys", "run")


def _walk_sub(root: Path, rel: str) -> Iterator[str]:
    full = root / rel
    for name in sorted(os.listdir(full), key=os.fsencode):
        child = f"{rel}/{name}"
        yield child
        child_full = full / name
        if child_full.is_dir() and not child_full.is_symlink():
            yield from _walk_sub(root, child)


def iter_tree(root: Path) -> Iterator[str]:
    """Relative paths of a tree in archive order (sorted, depth first)."""
    for name in sorted(os.listdir(root), key=os.fsencode):
        yield name
        child = root / name
        if child.is_dir() and not child.is_symlink():
            yield from _walk_sub(root, name)


def write_tree_tar(
    src: Path,
    dest: IO[bytes],
    *,
    epoch: int,
    exclude: Callable[[str], bool] | None = None,
) -> None:
    """Write the tree under ``src`` to ``dest`` as a deterministic tar stream.

    ``exclude`` receives each relative path (no leading ``./``) and drops it (and,
    for a directory, everything below it) when it returns True. The contents of
    ``dev``, ``proc``, ``sys`` and ``run`` are never archived.
    """
    with tarfile.open(fileobj=dest, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        skipped: list[str] = []
        for rel in iter_tree(src):
            if any(rel.startswith(prefix + "/") for prefix in skipped):
                continue
            top = rel.split("/", 1)[0]
            if "/" in rel and top in VIRTUAL_DIRS:
                continue
            if exclude is not None and exclude(rel):
                skipped.append(rel)
                continue
            full = src / rel
            info = tar.gettarinfo(str(full), arcname=rel)
            if info is None:  # sockets
                continue
            info.uname = ""
            info.gname = ""
            info.mtime = min(int(info.mtime), epoch)
            info.pax_headers = {}
            if info.isreg():
                with open(full, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)


def write_tree_tar_file(
    src: Path,
    dest: Path,
    *,
    epoch: int,
    exclude: Callable[[str], bool] | None = None,
) -> tuple[str, int]:
    """Write a deterministic tar of ``src`` to the file ``dest``; return (sha256, size)."""
    with open(dest, "wb") as raw:
        writer = HashingWriter(raw)
        write_tree_tar(src, writer, epoch=epoch, exclude=exclude)  # type: ignore[arg-type]
        raw.flush()
        os.fsync(raw.fileno())
    return writer.hasher.hexdigest(), writer.size


def is_elf(path: Path) -> bool:
    """True for a regular file that starts with the ELF magic."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_size < 4:
            return False
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False
