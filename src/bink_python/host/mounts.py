"""The one unmount-below: what an interrupted tool left mounted under a directory.

mmdebstrap (``/proc``, ``/dev`` in a base tree) and buildah (an image's root
filesystem) mount below directories the pipeline later removes; removing a tree
with something still mounted in it would delete through the mount.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import BinkError
from .proc import spawn


def mounts_below(path: Path) -> list[str]:
    """Mount points at or below ``path``, deepest first (from /proc/self/mountinfo)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    prefix = str(path.resolve())
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].encode().decode("unicode_escape")  # \040 for a space etc.
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_below(path: Path, *, error: type[BinkError] | None = None) -> None:
    """Unmount (lazily) whatever is mounted at or below ``path``, deepest first.

    With ``error``, a failing ``umount`` raises it; without, cleanup is best effort.
    """
    for point in mounts_below(path):
        done = spawn(["umount", "--lazy", point], kind="mount", cleanup=True)
        if not done.ok and error is not None:
            reason = done.err.decode(errors="replace").strip() or done.returncode
            raise error(f"unmounting {point} failed: {reason}")


def remove_tree(path: Path, *, error: type[BinkError]) -> None:
    """Remove ``path`` after unmounting what is mounted below it (``error`` if that fails)."""
    if path.exists():
        unmount_below(path, error=error)
        shutil.rmtree(path)
