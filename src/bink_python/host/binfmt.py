"""Running foreign-architecture binaries through qemu-user and the kernel's binfmt_misc.

The base stage runs Debian maintainer scripts of the target architecture inside the
chroot (``mmdebstrap --architectures=arm64`` on an amd64 host), and verify runs the
images' own binaries. Both need the kernel to hand foreign ELF files to
``qemu-<arch>-static``, registered with the ``F`` (fix binary) flag so the
interpreter is opened on the host when registered and works inside any chroot.

:func:`ensure_binfmt` checks that registration and, when it is missing and we are
root, mounts ``binfmt_misc`` and registers the interpreter itself (the same entry
``qemu-user-static``/``binfmt-support`` would register); otherwise it raises a
:class:`~bink_python.errors.ToolError` naming what to install or run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ToolError
from .arch import ARCHES, host_arch
from .proc import run

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

#: ELF magic and mask per qemu name (the values qemu's own qemu-binfmt-conf.sh uses).
_MAGIC: dict[str, tuple[str, str]] = {
    "aarch64": (
        r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
    "x86_64": (
        r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00",
        r"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
}


def _entry_state(entry: Path) -> tuple[bool, str, str]:
    """(enabled, flags, interpreter) of a binfmt_misc entry file."""
    enabled = False
    flags = ""
    interpreter = ""
    for line in entry.read_text(errors="replace").splitlines():
        if line.strip() == "enabled":
            enabled = True
        elif line.startswith("flags:"):
            flags = line.split(":", 1)[1].strip()
        elif line.startswith("interpreter "):
            interpreter = line.split(" ", 1)[1].strip()
    return enabled, flags, interpreter


def _find_entry(qemu: str, binfmt_dir: Path) -> Path | None:
    """The registered entry for ``qemu`` (qemu-aarch64, or another name pointing to it)."""
    named = binfmt_dir / f"qemu-{qemu}"
    if named.is_file():
        return named
    if not binfmt_dir.is_dir():
        return None
    for entry in sorted(binfmt_dir.iterdir()):
        if entry.name in ("register", "status") or not entry.is_file():
            continue
        try:
            _, _, interpreter = _entry_state(entry)
        except OSError:
            continue
        if Path(interpreter).name.startswith(f"qemu-{qemu}"):
            return entry
    return None


def _install_hint(qemu: str) -> str:
    return (
        f"install qemu-user-static and binfmt-support (apt-get install qemu-user-static "
        f"binfmt-support) and run 'update-binfmts --enable qemu-{qemu}' as root"
    )


def emulation_env(arch: str) -> dict[str, str]:
    """Environment for running ``arch`` binaries under qemu-user (empty when native).

    qemu-user reads ``QEMU_CPU`` from the environment of the emulated process, so it
    must be set for the process (and is inherited by its children).
    """
    cpu = ARCHES[arch].qemu_cpu if arch in ARCHES else None
    if arch == host_arch() or cpu is None:
        return {}
    return {"QEMU_CPU": cpu}


def ensure_binfmt(arch: str, *, binfmt_dir: Path = BINFMT_DIR) -> None:
    """Make sure binaries of ``arch`` run on this host (no-op for the host arch).

    Raises ToolError with what to install or run when it cannot be arranged.
    """
    if arch not in ARCHES:
        raise ToolError(f"unknown architecture {arch}: expected one of {', '.join(ARCHES)}")
    if arch == host_arch():
        return
    qemu = ARCHES[arch].qemu
    is_root = os.geteuid() == 0
    register = binfmt_dir / "register"
    if not register.exists():
        if not is_root:
            raise ToolError(
                f"binfmt_misc is not mounted, needed to run {arch} binaries: as root run "
                f"'mount -t binfmt_misc binfmt_misc {binfmt_dir}' and {_install_hint(qemu)}"
            )
        run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt_dir)],
            what=f"mounting binfmt_misc on {binfmt_dir}",
            kind="mount",
        )
    entry = _find_entry(qemu, binfmt_dir)
    if entry is None:
        interpreter = shutil.which(f"qemu-{qemu}-static")
        if interpreter is None:
            raise ToolError(
                f"qemu-{qemu}-static not found, needed for {arch}: {_install_hint(qemu)}"
            )
        if not is_root:
            raise ToolError(f"qemu-{qemu} is not registered in {binfmt_dir}: {_install_hint(qemu)}")
        magic, mask = _MAGIC[qemu]
        line = f":qemu-{qemu}:M::{magic}:{mask}:{interpreter}:OCF"
        try:
            register.write_text(line)
        except OSError as exc:
            raise ToolError(
                f"could not register qemu-{qemu} in {binfmt_dir} ({exc.strerror}): "
                f"{_install_hint(qemu)}"
            ) from exc
        entry = binfmt_dir / f"qemu-{qemu}"
        if not entry.is_file():
            raise ToolError(
                f"registering qemu-{qemu} in {binfmt_dir} did not take effect: "
                f"{_install_hint(qemu)}"
            )
    enabled, flags, interpreter = _entry_state(entry)
    if not enabled:
        if not is_root:
            raise ToolError(f"binfmt entry {entry} is disabled: as root run 'echo 1 > {entry}'")
        entry.write_text("1")
    if "F" not in flags:
        raise ToolError(
            f"binfmt entry {entry} ({interpreter}) lacks the F (fix binary) flag, so it cannot "
            f"run inside a chroot: install qemu-user-static (its entry has F) and run "
            f"'update-binfmts --disable {entry.name}; update-binfmts --enable qemu-{qemu}' as root"
        )
