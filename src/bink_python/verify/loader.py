"""The image's dynamic loader, emulated on the mounted tree: does every ``NEEDED`` resolve?

Like ``ld.so``: ``RUNPATH`` (else ``RPATH``) with ``$ORIGIN``, then ld.so.conf (only
when ``/etc/ld.so.cache`` exists), then the default directories; every candidate is
resolved inside the image (:mod:`bink_python.oci.rootfs`) and must be an ELF file of the
image's machine.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ..oci.rootfs import read_text_in_root, resolve_in_root
from ..runtime.elf import ET_DYN, ET_EXEC, ElfError, read_elf_file


def image_paths(root: Path) -> Iterator[tuple[str, Path]]:
    """Every entry of the image as (absolute path in the image, host path); no /proc etc."""
    skip = {"proc", "sys", "dev"}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in skip]
            rel = ""
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            inner = "/" + (f"{rel}/{name}" if rel else name)
            yield inner, Path(dirpath) / name


def _ld_conf_dirs(
    root: Path, conf: str = "/etc/ld.so.conf", depth: int = 0, seen: set[str] | None = None
) -> list[str]:
    """Directories listed by ld.so.conf and its ``include`` globs, in order.

    Each file is read once (bounded), however often it is included: a hostile image's
    includes of includes cannot make this loop or grow exponentially."""
    seen = set() if seen is None else seen
    if depth > 8 or conf in seen or len(seen) >= 256:
        return []
    seen.add(conf)
    text = read_text_in_root(root, conf)
    if text is None:
        return []
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            pattern = line.split(None, 1)[1] if len(line.split(None, 1)) > 1 else ""
            if not pattern.startswith("/"):
                pattern = str(PurePosixPath(conf).parent / pattern)
            parent = resolve_in_root(root, str(PurePosixPath(pattern).parent))
            if parent is None or not parent.is_dir():
                continue
            for match in sorted(parent.glob(PurePosixPath(pattern).name)):
                inner = str(PurePosixPath(pattern).parent / match.name)
                out += _ld_conf_dirs(root, inner, depth + 1, seen)
        elif line.startswith("/"):
            out.append(line)
    return out


def library_dirs(root: Path, multiarch: str) -> list[str]:
    """Where the image's dynamic loader looks for libraries not found through RUNPATH.

    glibc reads ld.so.conf only through /etc/ld.so.cache: the conf directories count
    only when the cache exists (distroless images have neither ldconfig nor a cache).
    The trusted default directories (Debian multiarch first) always count.
    """
    dirs: list[str] = []
    if resolve_in_root(root, "/etc/ld.so.cache") is not None:
        dirs += _ld_conf_dirs(root)
    dirs += [f"/lib/{multiarch}", f"/usr/lib/{multiarch}", "/lib", "/usr/lib"]
    if multiarch.startswith("x86_64"):
        dirs += ["/lib64", "/usr/lib64"]
    seen: dict[str, None] = {}
    for d in dirs:
        seen.setdefault(d, None)
    return list(seen)


def unresolved_needed(root: Path, multiarch: str, machine: int) -> tuple[int, list[str]]:
    """(ELF objects scanned, problems): NEEDED libraries or interpreters not in the image."""
    default_dirs = library_dirs(root, multiarch)
    problems: list[str] = []
    scanned = 0
    cache: dict[str, bool] = {}

    def usable(candidate: str) -> bool:
        if candidate not in cache:
            host = resolve_in_root(root, candidate)
            ok = False
            if host is not None and host.is_file():
                try:
                    info = read_elf_file(host)
                    ok = info is not None and info.machine == machine
                except (OSError, ElfError):
                    ok = False
            cache[candidate] = ok
        return cache[candidate]

    for inner, host in image_paths(root):
        try:
            st = host.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_size < 52:
                continue
            info = read_elf_file(host)
        except ElfError as exc:
            problems.append(f"{inner}: unreadable ELF ({exc})")
            continue
        except OSError:
            continue
        if info is None or info.type not in (ET_EXEC, ET_DYN):
            continue
        scanned += 1
        if info.interpreter and not usable(info.interpreter):
            problems.append(f"{inner}: interpreter {info.interpreter} not found")
        origin = str(PurePosixPath(inner).parent)
        own = info.runpath or (info.rpath if not info.runpath else ())
        search = [p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in own]
        for lib in info.needed:
            if "/" in lib:
                found = usable(lib if lib.startswith("/") else f"{origin}/{lib}")
            else:
                found = any(usable(f"{d}/{lib}") for d in (*search, *default_dirs))
            if not found:
                problems.append(f"{inner}: NEEDED {lib} not found")
    return scanned, problems
