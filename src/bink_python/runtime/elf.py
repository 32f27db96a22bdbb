"""The one ELF reader: what the dynamic loader and the checks need from an ELF file.

Built on pyelftools. The runtime stage uses it for the machine and ``NEEDED``
libraries of what it compiled; verify uses it to resolve every image's ``NEEDED``
libraries and interpreters inside the image and to check each binary's architecture.
Machine numbers are named with :data:`bink_python.host.arch.ARCHES` (``elf_machine``,
``elf_name``) for the family's architectures, with pyelftools' name for any other.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError as _PyElfError
from elftools.construct.core import ConstructError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_MACHINE, ENUM_E_TYPE
from elftools.elf.segments import InterpSegment

from ..host.arch import ARCHES

ELF_MAGIC = b"\x7fELF"

#: The largest file read as ELF (the biggest libraries in these images are tens of
#: MiB): a file of an untrusted image may be many GiB, and is refused, not read.
MAX_ELF_BYTES = 256 << 20
ET_EXEC, ET_DYN = ENUM_E_TYPE["ET_EXEC"], ENUM_E_TYPE["ET_DYN"]

_MACHINE_NAMES = {a.elf_machine: a.elf_name for a in ARCHES.values()}
_EM_NAMES = {number: name for name, number in ENUM_E_MACHINE.items() if isinstance(number, int)}


#: Dynamic tags whose value is a string, by the attribute pyelftools gives it under.
_STRING_TAGS = {
    "DT_NEEDED": "needed",
    "DT_RPATH": "rpath",
    "DT_RUNPATH": "runpath",
    "DT_SONAME": "soname",
}


class ElfError(ValueError):
    """A file that starts like ELF but cannot be parsed."""


@dataclass(frozen=True)
class ElfInfo:
    """The parts of an ELF file the dynamic loader looks at."""

    elf_class: int  # 1: 32-bit, 2: 64-bit
    machine: int  # e_machine: 62 x86-64, 183 AArch64
    type: int  # e_type: 2 EXEC, 3 DYN, 1 REL...
    interpreter: str = ""
    needed: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    soname: str = ""

    @property
    def machine_name(self) -> str:
        return machine_name(self.machine)


def machine_name(machine: int) -> str:
    """``x86-64`` for 62, ``AArch64`` for 183; pyelftools' ``EM_`` name for others."""
    if machine in _MACHINE_NAMES:
        return _MACHINE_NAMES[machine]
    return _EM_NAMES.get(machine, str(machine)).removeprefix("EM_")


def _number(value: object, table: Mapping[str, int]) -> int:
    """pyelftools gives enum fields as names (known values) or ints (unknown ones)."""
    return value if isinstance(value, int) else table[str(value)]


def read_elf(data: bytes) -> ElfInfo:
    """Parse an ELF image in memory (any class, either byte order)."""
    if len(data) < 52 or data[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file")
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError(f"bad ELF class/data bytes {data[4]}/{data[5]}")
    try:
        elf = ELFFile(io.BytesIO(data))
        header = elf.header
        interpreter = ""
        dynamic: DynamicSegment | None = None
        for segment in elf.iter_segments():
            if isinstance(segment, InterpSegment):
                interpreter = segment.get_interp_name()
            elif isinstance(segment, DynamicSegment):
                dynamic = segment
        strings: dict[str, list[str]] = {name: [] for name in _STRING_TAGS.values()}
        if dynamic is not None:
            for tag in dynamic.iter_tags():
                attr = _STRING_TAGS.get(str(tag.entry.d_tag))
                if attr is not None:
                    strings[attr].append(str(getattr(tag, attr)))
        needed = strings["needed"]
        rpath = [p for value in strings["rpath"] for p in value.split(":") if p]
        runpath = [p for value in strings["runpath"] for p in value.split(":") if p]
        soname = strings["soname"][0] if strings["soname"] else ""
        return ElfInfo(
            elf_class=1 if elf.elfclass == 32 else 2,
            machine=_number(header["e_machine"], ENUM_E_MACHINE),
            type=_number(header["e_type"], ENUM_E_TYPE),
            interpreter=interpreter,
            needed=tuple(needed),
            rpath=tuple(rpath),
            runpath=tuple(runpath),
            soname=soname,
        )
    except (_PyElfError, ConstructError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ElfError(f"unreadable ELF file ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ElfError(f"unreadable ELF string ({exc})") from exc


def read_elf_file(path: Path) -> ElfInfo | None:
    """The ELF info of a regular file, or None when it is not ELF."""
    with open(path, "rb") as handle:
        if handle.read(4) != ELF_MAGIC:
            return None
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_ELF_BYTES:
            raise ElfError(f"{size} bytes, larger than the {MAX_ELF_BYTES} read as ELF")
        handle.seek(0)
        return read_elf(handle.read(MAX_ELF_BYTES + 1))


def read_elf_of_arch(path: Path, arch: str) -> ElfInfo:
    """The ELF info of ``path``, which must be an ELF file built for ``arch`` (ARCHES).

    Raises :class:`ElfError` whose message completes ``"<path> ..."``: ``is not an ELF
    file``, ``is not a readable ELF file (...)``, ``is built for x86-64, not for arm64
    (AArch64)``.
    """
    try:
        info = read_elf_file(path)
    except (OSError, ElfError) as exc:
        raise ElfError(f"is not a readable ELF file ({exc})") from exc
    if info is None:
        raise ElfError("is not an ELF file")
    if info.machine != ARCHES[arch].elf_machine:
        want = ARCHES[arch].elf_name
        raise ElfError(f"is built for {info.machine_name}, not for {arch} ({want})")
    return info
