"""The family's architectures, each with every name the pipeline needs for it.

One :class:`Arch` per architecture, keyed by Debian's name (``amd64``, ``arm64``):
the OCI platform, the GNU triplet, the ELF ``e_machine`` (number and name), the
kernel's machine name (``uname -m``, ``platform.machine()``; also qemu-user's name),
the CPU qemu-user emulates for it, the README's platform name and the GitHub Actions
runner that builds it natively.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from ..errors import BinkError, ToolError


@dataclass(frozen=True)
class Arch:
    name: str  # Debian's: "amd64"
    oci: str  # the OCI platform's architecture
    oci_variant: str  # the OCI platform's variant ("" when it has none)
    gnu: str  # the GNU triplet: multiarch directories, sysconfig data
    elf_machine: int  # ELF e_machine
    elf_name: str  # e_machine as pyelftools names it, without "EM_"
    qemu: str  # uname -m, platform.machine() and qemu-user's name
    #: the CPU qemu-user emulates when running this arch (None: qemu's default)
    qemu_cpu: str | None
    runner: str  # the GitHub Actions runner that builds this arch natively

    @property
    def platform(self) -> str:
        """``linux/amd64``, ``linux/arm64/v8``: the OCI platform as the README writes it."""
        return "/".join(p for p in ("linux", self.oci, self.oci_variant) if p)


ARCHES: dict[str, Arch] = {
    "amd64": Arch(
        name="amd64",
        oci="amd64",
        oci_variant="",
        gnu="x86_64-linux-gnu",
        elf_machine=62,
        elf_name="x86-64",
        qemu="x86_64",
        qemu_cpu=None,
        runner="ubuntu-24.04",
    ),
    "arm64": Arch(
        name="arm64",
        oci="arm64",
        oci_variant="v8",
        gnu="aarch64-linux-gnu",
        elf_machine=183,
        elf_name="AArch64",
        qemu="aarch64",
        # under qemu's default CPU ("max") the pointer-authentication instructions of
        # Debian's arm64 binaries cost a software cipher per call (python3 started ~100x
        # slower than native); a Cortex-A72 (ARMv8.0) runs them as NOPs, as v8.0 hardware
        qemu_cpu="cortex-a72",
        runner="ubuntu-24.04-arm",
    ),
}


def check_arch(arch: str, error: type[BinkError], what: str = "arch") -> None:
    """Raise ``error("unknown WHAT 'ARCH': expected one of ...")`` unless ``arch`` is in ARCHES."""
    if arch not in ARCHES:
        raise error(f"unknown {what} {arch!r}: expected one of {', '.join(ARCHES)}")


def host_arch() -> str:
    """This machine's architecture in Debian's naming (``amd64`` or ``arm64``)."""
    machine = platform.machine().lower()
    for arch in ARCHES.values():
        if machine in (arch.name, arch.qemu):
            return arch.name
    known = ", ".join(arch.qemu for arch in ARCHES.values())
    raise ToolError(f"unsupported host architecture {machine}: expected one of {known}")
