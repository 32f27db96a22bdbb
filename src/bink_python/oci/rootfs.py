"""Paths inside a root filesystem that is not ours: the one resolve-inside-a-root.

An image's tree (a mounted image in verify, a base tree being slimmed, the symlinks
of a rootfs tarball in the SBOM) is untrusted: its symlinks may point anywhere,
absolute or with ``..``. The host must never follow them. Every function here walks
a path one component at a time and interprets each symlink *inside* the root, as the
image's own processes would see it: an absolute target starts again at the root,
``..`` never climbs above it, and a loop ends after ``max_links`` links. A host path
returned is made only of components that were checked not to be symlinks, so using
it cannot leave the root (as long as nothing changes the tree meanwhile: the trees
are ours to read, nothing runs in them during the walk).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path, PurePosixPath

#: Symlinks followed in one walk before giving up (the kernel's limit is 40).
MAX_LINKS = 40

#: The most read from one text file of an image (passwd, group, ld.so.conf, a dpkg
#: record): an image's file may be of any size (sparse, many GiB), a read is bounded.
MAX_TEXT = 4 << 20


def _parts(path: str) -> list[str]:
    return [p for p in PurePosixPath(path).parts if p not in ("/", "", ".")]


def walk(
    path: str,
    readlink: Callable[[str], str | None],
    *,
    exists: Callable[[str], bool] | None = None,
    follow_last: bool = True,
    max_links: int = MAX_LINKS,
) -> list[str] | None:
    """The components of ``path`` (relative to the root) with symlinks resolved inside it.

    ``readlink(rel)`` gives the target of the symlink at ``rel`` ("a/b", relative to the
    root), or None when ``rel`` is not a symlink. With ``exists``, a component for
    which it is false makes the result None (strict); without it, missing components
    are kept as they are. ``follow_last=False`` keeps the last component unresolved
    (for ``lstat``-like uses). None also when more than ``max_links`` links are met.
    """
    parts = _parts(path)
    current: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if current:
                current.pop()
            continue
        rel = "/".join([*current, part])
        target = readlink(rel) if parts or follow_last else None
        if target is not None:
            links += 1
            if links > max_links:
                return None
            if target.startswith("/"):
                current = []
            parts = _parts(target) + parts
            continue
        if exists is not None and not exists(rel):
            return None
        current.append(part)
    return current


def _host_readlink(root: Path) -> Callable[[str], str | None]:
    def readlink(rel: str) -> str | None:
        host = root / rel
        return os.readlink(host) if host.is_symlink() else None

    return readlink


def resolve_in_root(root: Path, path: str, *, max_links: int = MAX_LINKS) -> Path | None:
    """``path`` (absolute, in the image) resolved with symlinks interpreted inside ``root``.

    Returns the host path of the final file, or None when it does not exist (or the
    links loop).
    """
    parts = walk(
        path,
        _host_readlink(root),
        exists=lambda rel: os.path.lexists(root / rel),
        max_links=max_links,
    )
    return None if parts is None else root.joinpath(*parts)


def canonical_in_root(root: Path, path: str, *, max_links: int = MAX_LINKS) -> str | None:
    """``path`` relative to ``root`` with symlinks in its *parent* directories resolved.

    The last component is kept as it is (it may itself be a symlink, or not exist);
    "" for the root itself, None when the links loop.
    """
    parts = walk(path, _host_readlink(root), follow_last=False, max_links=max_links)
    return None if parts is None else "/".join(parts)


def lexists_in_root(root: Path, path: str) -> bool:
    """Whether ``path`` names an entry (any type, a dangling symlink too) inside ``root``."""
    rel = canonical_in_root(root, path)
    return rel is not None and rel != "" and os.path.lexists(root / rel)


def make_dir_in_root(root: Path, path: str, *, mode: int, fresh: bool = False) -> Path:
    """Create the directory ``path`` (absolute, in the image) inside ``root``; its host path.

    Existing parents are followed as the image sees them (their symlinks resolved inside
    the root, never on the host); missing ones are created. Whatever stands at the last
    component and is not a real directory (a symlink planted by the image, a file) is
    removed first, and with ``fresh`` an existing directory too. ``mode`` is set on the
    last component. Only for trees that are ours to change (a container's copy).
    """
    parts = _parts(path)
    current = root
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        host = resolve_in_root(root, "/" + "/".join(parts[: i + 1]))
        if host is not None and host.is_dir() and not host.is_symlink() and not (last and fresh):
            current = host
            continue
        target = current / part  # ``current`` has no symlinks: this stays in the root
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()
        target.mkdir()
        current = target
    current.chmod(mode)
    return current


def read_bounded(host: Path, *, limit: int, name: str | None = None) -> bytes | None:
    """The bytes of the regular file at ``host``, at most ``limit`` of them.

    The last component is not followed (``O_NOFOLLOW``: resolve it inside the root
    first) and a FIFO or device never blocks or is read (``O_NONBLOCK``, then only a
    regular file is read). None when ``host`` is missing, a symlink or not a regular
    file; ``OSError(EFBIG)`` naming ``name`` when the file is larger than ``limit``.
    """
    label = name or str(host)
    try:
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        data = handle.read(limit + 1) if st.st_size <= limit else b""
        if st.st_size > limit or len(data) > limit:
            size = max(st.st_size, len(data))
            raise OSError(
                errno.EFBIG, f"{label} is {size} bytes, more than the {limit} verify reads"
            )
        return data


def read_text_in_root(root: Path, path: str, *, limit: int = MAX_TEXT) -> str | None:
    """The text of the regular file ``path`` (absolute, in the image) inside ``root``.

    Symlinks are resolved inside the root; None when it is missing or not a regular
    file; at most ``limit`` bytes are read (``OSError(EFBIG)`` beyond).
    """
    host = resolve_in_root(root, path)
    if host is None:
        return None
    data = read_bounded(host, limit=limit, name=path)
    return None if data is None else data.decode(errors="replace")


def create_file(directory: Path, name: str, data: bytes, *, mode: int = 0o644) -> Path:
    """Write a new file ``name`` in ``directory`` (a host path with no symlinks, as
    :func:`make_dir_in_root` returns): never through a symlink or over an existing
    entry (``O_CREAT | O_EXCL | O_NOFOLLOW``)."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a file name: {name!r}")
    path = directory / name
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
