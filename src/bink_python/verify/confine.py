"""What an image may not do to the host while verify runs it.

``buildah run --isolation chroot`` shares the host's PID namespace and prepares the
container's tree by following paths on the host: an image could leave processes running
after its command, or point a path buildah writes to at a host directory. These guards
find both from the host side.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

#: Paths ``buildah run --isolation chroot`` creates or mounts over in the container's
#: tree before the command starts (bind-mount targets it creates by joining the path
#: to the mounted root *on the host*), and the user database it reads and may extend.
BUILDAH_TOUCHES = (
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/proc",
    "/sys",
    "/sys/fs/cgroup",
    "/run",
    "/run/secrets",
    "/run/.containerenv",
    "/etc",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/passwd",
    "/etc/group",
)


def symlinked_setup_paths(root: Path) -> list[str]:
    """Which of :data:`BUILDAH_TOUCHES` is a symlink in the image, or below one.

    buildah follows such a link on the host: an image whose ``/etc`` points at a host
    directory makes it create ``hostname`` there. Nothing may run in such an image."""
    found = []
    for inner in BUILDAH_TOUCHES:
        rel = inner.lstrip("/")
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            path = root.joinpath(*parts[:i])
            if path.is_symlink():
                found.append(f"{'/' + '/'.join(parts[:i])} -> {os.readlink(path)}")
                break
            if not path.is_dir():
                break
    return sorted(set(found))


def processes_rooted_at(root: Path) -> list[int]:
    """Live processes whose root directory is ``root`` (same device and inode: also
    through the bind mount and ``pivot_root`` of ``buildah run``), from /proc."""
    try:
        want = os.stat(root)
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/root")
        except OSError:  # gone, or a kernel thread
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
            found.append(int(entry))
    return found


def kill_rooted_at(root: Path, *, rounds: int = 50) -> int:
    """SIGKILL every process running inside ``root`` until none is left; how many.

    ``buildah run --isolation chroot`` shares the host's PID namespace and waits only
    for the command it started: whatever that command left running in the background
    (detached, in a new session) would outlive verify, as the family's user, with the
    host's network. Each round kills all it sees (a process forking meanwhile is
    caught by the next round)."""
    killed = 0
    for _ in range(rounds):
        pids = processes_rooted_at(root)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.05)
    return killed
