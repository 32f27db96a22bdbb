"""What a built runtime must contain, and what it links.

``make install`` puts CPython under :data:`PREFIX`; the tree is cleaned like the
reference images (tests, bytecode, static libraries), given the unversioned command
links, and pip's scripts must run this runtime's interpreter.

CPython's build reports the stdlib extension modules it could not build; every one
the images promise (:data:`REQUIRED_EXTENSIONS`) must be in lib-dynload. The shared
libraries the runtime links (ELF ``NEEDED``) are mapped to the distribution packages
that provide them, which must all be in the distro's ``runtime_packages`` (so the
base supplies them).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from .distro import ARCHES, Distro
from .errors import BuildError

#: Where a runtime is installed (the runtime tarball's paths start with ``usr/local/``).
PREFIX = "/usr/local"

#: Directories removed from the installed tree wherever they are (reference cleanup).
REMOVED_DIRS = frozenset({"test", "tests", "idle_test"})

#: Unversioned names made in bin/ for the versioned-3 commands.
UNVERSIONED_LINKS = ("idle3", "pip3", "pydoc3", "python3", "python3-config")

#: Stdlib extension modules that are intentionally not built (no Tk in the images).
#: Any other module reported missing or failed by CPython's build fails the build.
EXTENSIONS_NOT_BUILT = frozenset({"_tkinter"})

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
    gnu = ARCHES[arch]["gnu"]
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
    gnu = ARCHES[arch]["gnu"]
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
