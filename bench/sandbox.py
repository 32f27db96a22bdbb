"""Run a command in an unpacked image root under bubblewrap, as a container would.

Shared by the benchmarks and the integration tests that run interpreters in a root.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from bink_python.runtime.buildroot import root_mounts


def bwrap_argv(
    root: Path,
    *,
    writable: bool = False,
    user: bool = False,
    home: str | None = None,
    env: Mapping[str, str] | None = None,
    binds: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """The bwrap argv (up to and including ``--``) that runs a command in ``root``.

    A fresh /proc, /dev and /tmp; ``binds`` are (host, inside) directories bound
    read only; ``user`` runs as uid/gid 10000; the environment is PATH and LANG,
    HOME when given, then ``env``.
    """
    argv = [shutil.which("bwrap") or "bwrap", *root_mounts(root, writable=writable)]
    for host, inside in binds:
        argv += ["--ro-bind", host, inside]
    if user:
        argv += ["--unshare-user", "--uid", "10000", "--gid", "10000"]
    argv += ["--unshare-pid", "--die-with-parent", "--clearenv"]
    full_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    if home is not None:
        full_env["HOME"] = home
    full_env.update(env or {})
    for name, value in full_env.items():
        argv += ["--setenv", name, value]
    return [*argv, "--"]
