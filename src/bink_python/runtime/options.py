"""What each CPython minor's configure, Makefile, stdlib and system libraries have, as its
documentation says, and the checker that holds a build plan to it (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .plan import STABLE_ABI_RUNPATH_RULE, BuildPlan, eval_loop_rule

#: The minors the table covers.
MINORS = ((3, 9), (3, 10), (3, 11), (3, 12), (3, 13), (3, 14), (3, 15))

#: The one document every row was checked against: its ``.. option::`` and ``.. envvar::``
#: entries with their ``versionadded`` notes (nothing the plan uses is deprecated or removed).
CONFIGURE_RST = "python/cpython Doc/using/configure.rst (main, 0005487d7b34)"

#: The documents each minor's rows were read from, beside :data:`CONFIGURE_RST`.
SOURCES: dict[tuple[int, int], str] = {
    (3, 9): f"{CONFIGURE_RST}: every option the 3.9 plan passes is versionadded 3.6 or "
    "older; cross builds: configure before 3.11 searches python$PACKAGE_VERSION on PATH "
    "('checking for python interpreter for cross build', its output in build logs)",
    (3, 10): "https://docs.python.org/3.10/using/configure.html (3.10.6 text edition): "
    "--without-static-libpython, --disable-test-modules new in 3.10, no --with-build-python; "
    "python/cpython#24418 (bpo-43103: LIBRARY_DEPS, LINK_PYTHON_DEPS); "
    "python-poetry/poetry#9370 (3.10's sysconfig with LIBRARY_DEPS)",
    (3, 11): f"{CONFIGURE_RST}: versionadded 3.11 --with-build-python, HOSTRUNNER",
    (3, 12): f"{CONFIGURE_RST}: versionadded 3.12 --enable-bolt, BOLT_APPLY_FLAGS; "
    "python/cpython#95908 (LLVM_BOLT, MERGE_FDATA), python/cpython#104709 (BOLT_BINARIES, "
    "merged for 3.12)",
    (3, 13): f"{CONFIGURE_RST}; https://docs.python.org/3.13/using/configure.html",
    (3, 14): f"{CONFIGURE_RST}: versionadded 3.14 LIBZSTD_CFLAGS/LIBZSTD_LIBS, zstd 1.4.5 "
    "for compression.zstd (_zstd)",
    (3, 15): "configure.rst as rendered for 3.15: --enable-static-libpython-for-interpreter "
    "versionadded 3.15.0a8; python/cpython#133313 (merged for 3.15)",
}


@dataclass(frozen=True)
class Since:
    """The first minor that has a name, and the first that no longer has it (None: all since)."""

    added: tuple[int, int]
    removed: tuple[int, int] | None = None

    def has(self, minor: tuple[int, int]) -> bool:
        return self.added <= minor and (self.removed is None or minor < self.removed)


_ALWAYS = Since((3, 0))

#: Autoconf's own options and variables, and pkg-config's (pkg.m4): in every version.
AUTOCONF = frozenset(
    {"--build", "--host", "--enable-option-checking", "CONFIG_SITE", "PKG_CONFIG",
     "PKG_CONFIG_LIBDIR"}
)  # fmt: skip

#: CPython's configure options the planner passes (``--without-X`` is ``--with-X``,
#: ``--disable-X`` is ``--enable-X``), and the configure variables it sets.
CONFIGURE_OPTIONS: dict[str, Since] = {
    "--enable-loadable-sqlite-extensions": Since((3, 6)),
    "--enable-shared": _ALWAYS,
    "--with-ensurepip": Since((3, 6)),
    "--with-system-expat": _ALWAYS,
    "--with-static-libpython": Since((3, 10)),
    "--enable-test-modules": Since((3, 10)),
    "--enable-optimizations": Since((3, 6)),
    "--with-lto": Since((3, 6)),
    "--enable-bolt": Since((3, 12)),
    "LLVM_BOLT": Since((3, 12)),
    "MERGE_FDATA": Since((3, 12)),
    "--with-build-python": Since((3, 11)),
    "--enable-static-libpython-for-interpreter": Since((3, 15)),
}

#: Makefile variables the recipe sets or edits (Makefile.pre.in, configure.rst's flag list).
MAKE_VARIABLES: dict[str, Since] = {
    "BLDLIBRARY": _ALWAYS,
    "LIBRARY_OBJS": _ALWAYS,
    "BUILDPYTHON": _ALWAYS,
    "BLDSHARED": _ALWAYS,
    "EXTRA_CFLAGS": _ALWAYS,
    "LDFLAGS": _ALWAYS,
    "CPPFLAGS": _ALWAYS,
    "DESTDIR": _ALWAYS,
    "CFLAGS_NODIST": Since((3, 5)),
    "PY_CFLAGS_NODIST": Since((3, 5)),
    "LINK_PYTHON_DEPS": Since((3, 10)),
    "LIBRARY_DEPS": Since((3, 10)),
    "BOLT_BINARIES": Since((3, 12)),
}

#: Stdlib modules the images remove (contents.REMOVED_STDLIB_MODULES), per the library
#: reference of each minor: Tk, IDLE and turtle ship in every covered minor.
STDLIB_MODULES: dict[str, Since] = {
    "_tkinter": _ALWAYS,
    "tkinter": _ALWAYS,
    "idlelib": _ALWAYS,
    "turtle": _ALWAYS,
    "turtledemo": _ALWAYS,
}


#: ``python -m compileall`` options the recipe's bytecode step passes (Doc/library/compileall.rst:
#: ``-j`` versionchanged 3.5, ``--invalidation-mode`` versionchanged 3.7).
COMPILEALL_OPTIONS: dict[str, Since] = {
    "-q": _ALWAYS,
    "-f": _ALWAYS,
    "-d": _ALWAYS,
    "-x": _ALWAYS,
    "-j": Since((3, 5)),
    "--invalidation-mode": Since((3, 7)),
}


@dataclass(frozen=True)
class ExtensionLibrary:
    """An extension module's system library: its -dev package in the build root and its
    runtime package in the base (``t64`` appended where the release renamed it)."""

    module: str
    since: Since
    build_package: str
    runtime_package: str


#: Extension modules that link a system library, from configure.rst's optional-module table.
EXTENSION_LIBRARIES = (
    ExtensionLibrary("_bz2", _ALWAYS, "libbz2-dev", "libbz2-1.0"),
    ExtensionLibrary("_ctypes", _ALWAYS, "libffi-dev", "libffi8"),
    ExtensionLibrary("_lzma", _ALWAYS, "liblzma-dev", "liblzma5"),
    ExtensionLibrary("_curses", _ALWAYS, "libncurses-dev", "libncursesw6"),
    ExtensionLibrary("_dbm", _ALWAYS, "libgdbm-compat-dev", "libgdbm-compat4"),
    ExtensionLibrary("_gdbm", _ALWAYS, "libgdbm-dev", "libgdbm6"),
    ExtensionLibrary("readline", _ALWAYS, "libreadline-dev", "libreadline8"),
    ExtensionLibrary("_sqlite3", _ALWAYS, "libsqlite3-dev", "libsqlite3-0"),
    ExtensionLibrary("_ssl", _ALWAYS, "libssl-dev", "libssl3"),
    ExtensionLibrary("_uuid", Since((3, 7)), "uuid-dev", "libuuid1"),
    ExtensionLibrary("pyexpat", _ALWAYS, "libexpat1-dev", "libexpat1"),
    ExtensionLibrary("zlib", _ALWAYS, "zlib1g-dev", "zlib1g"),
    ExtensionLibrary("_zstd", Since((3, 14)), "libzstd-dev", "libzstd1"),
)


def _option_name(arg: str) -> str:
    """``--with-lto`` for ``--with-lto=full``, ``--with-X`` for ``--without-X``,
    ``--enable-X`` for ``--disable-X``, ``VAR`` for ``VAR=value``."""
    name = arg.split("=", 1)[0]
    if name.startswith("--without-"):
        return "--with-" + name.removeprefix("--without-")
    if name.startswith("--disable-"):
        return "--enable-" + name.removeprefix("--disable-")
    return name


def _variables(text: str) -> set[str]:
    """Makefile variables assigned (``VAR=``, ``VAR +=``) or read (``$(VAR)``) in ``text``."""
    assigned = re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)\s*\+?=", text)
    read = re.findall(r"\$\(([A-Z][A-Z0-9_]*)\)", text)
    return set(assigned) | set(read)


def plan_names(plan: BuildPlan) -> tuple[set[str], set[str]]:
    """The configure options and the Makefile variables ``plan`` uses, with the rules the
    recipe appends to every Makefile."""
    options = {_option_name(arg) for arg in plan.configure_args}
    options |= {name for name, _ in plan.configure_env}
    variables: set[str] = set()
    for text in (*plan.make_vars, eval_loop_rule(plan.eval_loop_cflags), STABLE_ABI_RUNPATH_RULE):
        variables |= _variables(text)
    return options, variables


def unknown_names(plan: BuildPlan, minor: tuple[int, int]) -> list[str]:
    """What in ``plan`` CPython ``minor`` does not have, each naming the version: empty when
    every option and variable is in the table for it."""
    options, variables = plan_names(plan)
    version = f"{minor[0]}.{minor[1]}"
    wrong = []
    for name in sorted(options - AUTOCONF):
        since = CONFIGURE_OPTIONS.get(name)
        if since is None or not since.has(minor):
            wrong.append(f"configure option {name} is not in CPython {version}")
    for name in sorted(variables):
        since = MAKE_VARIABLES.get(name)
        if since is None or not since.has(minor):
            wrong.append(f"Makefile variable {name} is not in CPython {version}")
    return wrong


def missing_modules(removed: Iterable[str], minor: tuple[int, int]) -> list[str]:
    """The modules of ``removed`` that CPython ``minor``'s stdlib does not have to remove."""
    return sorted(
        name
        for name in removed
        if name not in STDLIB_MODULES or not STDLIB_MODULES[name].has(minor)
    )


def unknown_compileall_options(argv: Iterable[str], minor: tuple[int, int]) -> list[str]:
    """The options after ``-m compileall`` in ``argv`` that CPython ``minor`` lacks."""
    args = list(argv)
    rest = args[args.index("compileall") + 1 :] if "compileall" in args else []
    return sorted(
        arg
        for arg in rest
        if arg.startswith("-")
        and (arg not in COMPILEALL_OPTIONS or not COMPILEALL_OPTIONS[arg].has(minor))
    )
