"""The probes' bytecode, kept on the host between verifications (speed only).

The probes' Python writes bytecode under :data:`~bink_python.verify.registry.PYCACHE`
in the container (never into the image's own tree). Under qemu, compiling pip's
modules once per image costs minutes, so the directory is saved on the host per
runtime (the layers above the base) and seeded into the next container.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from ..store import cache_root


def host_pycache(manifest: dict[str, Any]) -> Path | None:
    """A host directory keeping the probes' bytecode across verifications of images that
    share the same layers above the base (the same runtime): under qemu, compiling pip's
    modules once per image costs minutes. Only speed depends on it: Python checks every
    ``.pyc`` against its source (size and mtime) and recompiles a stale one."""
    layers = [str(x.get("digest", "")) for x in manifest.get("layers", [])[1:]]
    if not layers:
        return None
    key = hashlib.sha256("\n".join(layers).encode()).hexdigest()[:32]
    try:
        return cache_root() / "verify-pycache" / key
    except OSError:
        return None


def seed_pycache(host: Path | None, target: Path) -> None:
    """Seed the in-image bytecode directory ``target`` (made inside the image's root
    with :func:`~bink_python.rootfs.make_dir_in_root`, world-writable) from ``host``."""
    if host is not None and host.is_dir():
        with contextlib.suppress(OSError):
            shutil.copytree(host, target, symlinks=True, dirs_exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o1777)


def save_pycache(source: Path, host: Path | None) -> None:
    """Keep the bytecode the probes compiled for the next verification (best effort)."""
    if host is None or not source.is_dir():
        return
    with contextlib.suppress(OSError):
        host.parent.mkdir(parents=True, exist_ok=True)
        tmp = host.with_name(f".{host.name}.{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp, symlinks=True)
        shutil.rmtree(host, ignore_errors=True)
        os.replace(tmp, host)
