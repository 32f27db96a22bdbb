"""The probes' bytecode, kept on the host between verifications (speed only).

The probes' Python writes bytecode under :data:`~bink_python.verify.registry.PYCACHE`
in the container (never into the image's own tree). Under qemu, compiling pip's
modules once per image costs minutes, so the directory is saved on the host per
runtime (the layers above the base) and seeded into the next container.

What the image's programs wrote is untrusted: saving finds the directory again inside
the root (:func:`~bink_python.oci.rootfs.resolve_in_root`), walks it without following a
symlink, and copies only regular ``*.pyc`` files (opened ``O_NOFOLLOW``), within
:data:`MAX_FILES` and :data:`MAX_BYTES`: a hostile image can neither make the host
read outside its root nor fill the host's disk.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

from ..oci.rootfs import read_bounded, resolve_in_root

#: At most this many bytecode files, and bytes in all, are saved per runtime.
MAX_FILES = 20000
MAX_BYTES = 256 << 20


def host_pycache(manifest: dict[str, Any], cache_dir: Path | None) -> Path | None:
    """A host directory keeping the probes' bytecode across verifications of images that
    share the same layers above the base (the same runtime): under qemu, compiling pip's
    modules once per image costs minutes. Only speed depends on it: Python checks every
    ``.pyc`` against its source (size and mtime) and recompiles a stale one. Kept under
    ``cache_dir`` (the cache root); None keeps none."""
    if cache_dir is None:
        return None
    layers = [str(x.get("digest", "")) for x in manifest.get("layers", [])[1:]]
    if not layers:
        return None
    key = hashlib.sha256("\n".join(layers).encode()).hexdigest()[:32]
    return cache_dir / "verify-pycache" / key


def seed_pycache(host: Path | None, target: Path, *, owner: tuple[int, int]) -> None:
    """Seed the in-image bytecode directory ``target`` (made inside the image's root
    with :func:`~bink_python.oci.rootfs.make_dir_in_root`, fresh and world-writable, before
    anything ran in the container) from ``host``; the copies belong to ``owner``
    (uid, gid: the user the probes run as, so they can add to them)."""
    if host is not None and host.is_dir():
        with contextlib.suppress(OSError):
            shutil.copytree(host, target, symlinks=True, dirs_exist_ok=True)
            for dirpath, dirnames, filenames in os.walk(target):
                for name in dirnames + filenames:
                    os.lchown(os.path.join(dirpath, name), *owner)
    target.chmod(0o1777)


def _copy_bytecode(source: Path, dest: Path) -> None:
    """Copy the regular ``*.pyc`` files below ``source`` (no symlink followed) to ``dest``."""
    files = total = 0
    for dirpath, dirnames, filenames in os.walk(source):  # never descends into a symlink
        dirnames.sort()
        rel = Path(dirpath).relative_to(source)
        for name in sorted(filenames):
            if not name.endswith(".pyc"):
                continue
            data = read_bounded(Path(dirpath) / name, limit=MAX_BYTES - total)
            if data is None:  # a symlink, a FIFO...: not ours to copy
                continue
            files, total = files + 1, total + len(data)
            if files > MAX_FILES:
                raise OSError(errno.EFBIG, f"more than {MAX_FILES} bytecode files")
            out = dest / rel / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)


def save_pycache(root: Path, inner: str, host: Path | None) -> None:
    """Keep the bytecode the probes compiled for the next verification (best effort).

    ``inner`` is the bytecode directory in the image, found again inside ``root``:
    the image's programs ran since it was made."""
    if host is None:
        return
    source = resolve_in_root(root, inner)
    if source is None or not stat.S_ISDIR(source.lstat().st_mode):
        return
    with contextlib.suppress(OSError):
        host.parent.mkdir(parents=True, exist_ok=True)
        tmp = host.with_name(f".{host.name}.{os.getpid()}.{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _copy_bytecode(source, tmp)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(host, ignore_errors=True)
        os.replace(tmp, host)
