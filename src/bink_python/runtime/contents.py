"""What a built runtime must contain, and what it links.

``make install`` puts CPython under :data:`PREFIX`; the tree is cleaned like the
reference images (tests, bytecode, static libraries), the modules the images leave out
(:data:`REMOVED_STDLIB_MODULES`) are removed, the unversioned command links made, pip's
scripts must run this runtime's interpreter, ``python3.X`` must carry the interpreter
core (no ``NEEDED`` libpython) while ``libpython3.X.so`` ships, only ``libpython3.so``
may have a library search path (:func:`check_runpaths`), and the standard library's
bytecode is compiled afresh, reproducibly (:func:`compile_bytecode`).

CPython's build reports the stdlib extension modules it could not build; every one
the images promise (:data:`REQUIRED_EXTENSIONS`) must be in lib-dynload. The shared
libraries the runtime links (ELF ``NEEDED``) are mapped to the distribution packages
that provide them, which must all be in the distro's ``runtime_packages`` (so the
base supplies them).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import BuildError
from ..host.arch import ARCHES
from ..host.distro import Distro
from .elf import ElfInfo

#: Where a runtime is installed (the runtime tarball's paths start with ``usr/local/``).
PREFIX = "/usr/local"

#: The one shipped ELF file with a RUNPATH, and its RUNPATH: libpython3.so NEEDS
#: libpython3.X.so from its own directory, which a distroless image's loader would not search.
STABLE_ABI_LIBRARY = "libpython3.so"
STABLE_ABI_RUNPATH = "$ORIGIN"

#: Directories removed from the installed tree wherever they are (reference cleanup).
REMOVED_DIRS = frozenset({"test", "tests", "idle_test"})

#: Unversioned names made in bin/ for the versioned-3 commands.
UNVERSIONED_LINKS = ("pip3", "pydoc3", "python3", "python3-config")

#: Standard-library modules (names of ``sys.stdlib_module_names``) the runtime deliberately
#: leaves out, and why: the one list. The build removes them (or does not build them), the
#: README lists them, and every other stdlib module of the platform must import.
REMOVED_STDLIB_MODULES: dict[str, str] = {
    "_tkinter": "Tk bindings (C part): the images ship no Tk, so it is not built",
    "tkinter": "Tk GUI toolkit: needs _tkinter and a display",
    "idlelib": "the IDLE editor (and the idle command): a Tk GUI",
    "turtle": "turtle graphics: a Tk GUI",
    "turtledemo": "turtle graphics demos: a Tk GUI",
}

#: Commands of removed modules, removed from bin/ (``idle3`` and ``idle3.13`` for ``idle``).
REMOVED_COMMANDS = ("idle",)

#: Test extension modules, removed from lib-dynload where ``--disable-test-modules`` does
#: not exist (3.9) or misses one: ``_testcapi``, ``xxlimited``, ``_ctypes_test``...
TEST_EXTENSION_RE = re.compile(r"^(_test|_xxtest|xx|_ctypes_test)")

#: Stdlib extension modules that are intentionally not built (no Tk in the images).
#: Any other module reported missing or failed by CPython's build fails the build.
EXTENSIONS_NOT_BUILT = frozenset({"_tkinter"})

#: How the shipped stdlib bytecode is validated against its source (PEP 552); see
#: :func:`compile_bytecode` for why.
BYTECODE_INVALIDATION = "timestamp"

#: Extension modules that need a system library: each must be a shared object in
#: lib-dynload of every runtime (a missing -dev package would silently drop it).
REQUIRED_EXTENSIONS = frozenset(
    {
        "_bz2",
        "_ctypes",
        "_curses",
        "_curses_panel",
        "_dbm",
        "_decimal",
        "_gdbm",
        "_hashlib",
        "_lzma",
        "_sqlite3",
        "_ssl",
        "_uuid",
        "pyexpat",
        "readline",
        "zlib",
    }
)

#: Packages present in every base (essential), allowed in NEEDED without being listed
#: in ``Distro.runtime_packages``.
ALWAYS_PRESENT_PACKAGES = frozenset({"libc6"})

_SUMMARY_HEADERS = {
    "The necessary bits to build these optional modules were not found:": "missing",
    "Failed to build these modules:": "failed",
    "Following modules built successfully but were removed because they could not be "
    "imported:": "removed",
    "Failed to build these modules (core):": "failed",
}


def parse_module_summary(text: str) -> dict[str, set[str]]:
    """Modules CPython's build reports as missing, failed or removed (by section)."""
    found: dict[str, set[str]] = {"missing": set(), "failed": set(), "removed": set()}
    section: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in _SUMMARY_HEADERS:
            section = _SUMMARY_HEADERS[stripped]
            continue
        if section is None:
            continue
        if not stripped or stripped.startswith("To find the necessary bits"):
            section = None
            continue
        if re.fullmatch(r"[A-Za-z0-9_. ]+", stripped):
            found[section].update(stripped.split())
        else:
            section = None
    return found


def check_module_summary(summary: dict[str, set[str]], subject: str, log: Path) -> None:
    bad = sorted(
        f"{name} ({kind})"
        for kind, names in summary.items()
        for name in names
        if name not in EXTENSIONS_NOT_BUILT
    )
    if bad:
        raise BuildError(
            f"{subject}: stdlib extension modules not built: {', '.join(bad)}; install their "
            f"-dev packages in the build root (distro.py build_packages); full log: {log}"
        )


def extension_modules(local: Path, minor: str) -> set[str]:
    """Names of the extension modules in lib-dynload (``_ssl`` for ``_ssl.cpython-...so``)."""
    dynload = local / "lib" / f"python{minor}" / "lib-dynload"
    if not dynload.is_dir():
        return set()
    return {p.name.split(".", 1)[0] for p in dynload.iterdir() if p.name.endswith(".so")}


def check_extensions(extensions: set[str], native: Iterable[str], subject: str) -> None:
    """Every required extension module was built, and every one of the ``native`` build
    of the same version (a cross build's build Python) too."""
    missing = (REQUIRED_EXTENSIONS | set(native)) - extensions
    if missing:
        raise BuildError(
            f"{subject}: extension modules missing from lib-dynload: "
            f"{', '.join(sorted(missing))}; check the build log for why they were skipped"
        )


def packages_of(sonames: list[str], arch: str, inside: Callable[..., str]) -> dict[str, str]:
    """Map each shared library name to the ``arch`` package providing it (``dpkg -S`` run
    in the build root by ``inside``)."""
    if not sonames:
        return {}
    gnu = ARCHES[arch].gnu
    patterns = [f"*/{gnu}/{name}" for name in sonames]
    out: str = inside(
        ["sh", "-c", 'dpkg-query -S "$@" 2>/dev/null || true', "sh", *patterns],
        "dpkg-query -S",
        logged=False,
    )
    found = parse_dpkg_search(out, sonames, arch)
    unknown = [name for name in sonames if name not in found]
    if unknown:
        raise BuildError(
            f"no {arch} package in the build root provides {', '.join(unknown)}: "
            "the runtime links a library the base cannot supply"
        )
    return found


def parse_dpkg_search(out: str, sonames: list[str], arch: str) -> dict[str, str]:
    """``{soname: package}`` from ``dpkg-query -S`` output, for libraries of ``arch``."""
    gnu = ARCHES[arch].gnu
    found: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("diversion by "):
            continue
        pkgs, _, path = line.partition(": ")
        name = path.rsplit("/", 1)[-1]
        if name in sonames and f"/{gnu}/" in path:
            for pkg in pkgs.split(", "):
                pkg_name, _, pkg_arch = pkg.partition(":")
                if pkg_arch in ("", arch):
                    found.setdefault(name, pkg_name)
    return dict(sorted(found.items()))


def check_packages(lib_packages: dict[str, str], distro: Distro, subject: str) -> None:
    allowed = set(distro.runtime_packages) | ALWAYS_PRESENT_PACKAGES
    missing = sorted({f"{pkg} ({lib})" for lib, pkg in lib_packages.items() if pkg not in allowed})
    if missing:
        raise BuildError(
            f"{subject} links libraries from packages not in {distro.name}'s runtime_packages: "
            f"{', '.join(missing)}; add them in distro.py"
        )


def clean_tree(local: Path) -> None:
    """Remove tests, bytecode and static libraries like the reference images (all versions)."""
    for path in sorted(local.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists() and not path.is_symlink():
            continue
        if path.is_dir() and not path.is_symlink():
            if path.name in REMOVED_DIRS:
                shutil.rmtree(path)
            elif path.name == "__pycache__" and not any(path.iterdir()):
                path.rmdir()
        elif path.suffix in (".pyc", ".pyo") or (
            path.name.startswith("libpython") and path.name.endswith(".a")
        ):
            path.unlink()
    # directories emptied by the removals above (e.g. __pycache__ of removed files)
    for path in sorted(local.rglob("__pycache__"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def make_links(bindir: Path) -> None:
    """``python`` -> ``python3`` and the like, as the reference images do."""
    for name in UNVERSIONED_LINKS:
        src = bindir / name
        dst = bindir / name.replace("3", "")
        if not src.exists():
            raise BuildError(f"{src.name} was not installed in {bindir}: the install is incomplete")
        if dst.exists() or dst.is_symlink():
            continue
        dst.symlink_to(name)


def check_pip(local: Path, minor: str) -> None:
    """pip is installed and its scripts run this runtime's interpreter."""
    pip = local / "bin" / "pip3"
    if not pip.is_file():
        raise BuildError(f"pip3 is missing from {local / 'bin'}: ensurepip did not run")
    first = pip.read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    expected = f"#!{PREFIX}/bin/python{minor}"
    if first != expected:
        raise BuildError(f"pip3 starts with {first!r}, expected {expected!r}")


def remove_unshipped(local: Path, minor: str) -> None:
    """Remove :data:`REMOVED_STDLIB_MODULES`, their commands and the test extension modules."""
    lib = local / "lib" / f"python{minor}"
    dynload = lib / "lib-dynload"
    for name in REMOVED_STDLIB_MODULES:
        if (lib / name).is_dir():
            shutil.rmtree(lib / name)
        (lib / f"{name}.py").unlink(missing_ok=True)
    for path in sorted(dynload.iterdir()) if dynload.is_dir() else []:
        module = path.name.split(".", 1)[0]
        if module in REMOVED_STDLIB_MODULES or TEST_EXTENSION_RE.match(module):
            path.unlink()
    bindir = local / "bin"
    for command in REMOVED_COMMANDS:
        for path in bindir.glob(f"{command}3*"):
            path.unlink()


def check_static_interpreter(local: Path, minor: str, needed: Sequence[str], log: Path) -> None:
    """``python3.X`` (whose ELF ``NEEDED`` list is ``needed``) carries the interpreter core,
    and ``libpython3.X.so`` still ships."""
    linked = [name for name in needed if name.startswith("libpython")]
    if linked:
        raise BuildError(
            f"bin/python{minor} links {', '.join(linked)}: the interpreter core was not "
            f"linked into the executable (the static-core link of plan_build did not apply); "
            f"full log: {log}"
        )
    if not list((local / "lib").glob(f"libpython{minor}*.so*")):
        raise BuildError(f"lib/libpython{minor}.so was not installed; full log: {log}")


def check_runpaths(elves: Mapping[Path, ElfInfo], local: Path, log: Path) -> None:
    """Of the runtime's ELF files (``elves``, under ``local``), only lib/libpython3.so has
    a search path, :data:`STABLE_ABI_RUNPATH`, and none an ``RPATH``."""
    wrong = []
    for path, info in sorted(elves.items()):
        rel = path.relative_to(local).as_posix()
        want = (STABLE_ABI_RUNPATH,) if rel == f"lib/{STABLE_ABI_LIBRARY}" else ()
        if info.runpath != want or info.rpath:
            wrong.append(f"{rel} (RUNPATH {list(info.runpath)}, RPATH {list(info.rpath)})")
    if wrong:
        raise BuildError(
            f"library search paths not as built (lib/{STABLE_ABI_LIBRARY} alone has one, "
            f"RUNPATH {STABLE_ABI_RUNPATH}): {', '.join(wrong)}; full log: {log}"
        )


def compile_bytecode(
    local: Path,
    minor: str,
    epoch: int,
    run: Callable[[list[str]], object],
    *,
    python: str,
) -> dict[str, Any]:
    """Compile the standard library's bytecode into the staged tree, reproducibly.

    ``run`` runs a command in the build root, where the staged tree ``local`` is
    ``/build/stage/usr/local``; ``python`` (inside) is the runtime's own interpreter, or the
    build Python of the same version when cross-compiling (the same bytecode).

    At the interpreter's default optimisation level (plain ``.cpython-3X.pyc``, no
    ``.opt-1``/``.opt-2``), excluding site-packages (pip writes its own). The invalidation
    mode is :data:`BYTECODE_INVALIDATION`, ``timestamp``: the interpreter's default,
    validated by the ``stat`` the import system makes anyway (``checked-hash`` reads and
    hashes every source on every import), and still correct when a derived image edits a
    stdlib file (``unchecked-hash`` would keep running the old bytecode). The source mtimes
    it records are first clamped to ``epoch`` exactly as the tar writer clamps them, so
    every ``.pyc`` matches its source in the image. One process (``-j 1``: parallel
    workers gave different bytes for some modules from run to run) and
    ``PYTHONHASHSEED=0`` (set by ``run``) keep the bytes identical from build to build.
    """
    lib = local / "lib" / f"python{minor}"
    for path in lib.rglob("*.py"):
        if path.stat().st_mtime > epoch:
            os.utime(path, (epoch, epoch), follow_symlinks=False)
    inner = f"/build/stage{PREFIX}/lib/python{minor}"
    run(
        [
            python,
            "-B",
            "-s",
            "-m",
            "compileall",
            "-q",
            "-f",
            "-j",
            "1",
            "--invalidation-mode",
            BYTECODE_INVALIDATION,
            "-d",
            f"{PREFIX}/lib/python{minor}",
            "-x",
            "/site-packages/",
            inner,
        ]
    )
    pycs = [p for p in lib.rglob("*.pyc") if "site-packages" not in p.parts]
    return {
        "invalidation": BYTECODE_INVALIDATION,
        "files": len(pycs),
        "bytes": sum(p.stat().st_size for p in pycs),
    }
