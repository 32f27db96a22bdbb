"""The pure planner: configure arguments, make variables, flags and the cache key. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BuildError, UsageError
from ..host.arch import ARCHES, check_arch
from ..store.store import cache_key
from .buildroot import BuildRootSpec, buildroot_key
from .contents import (
    BYTECODE_INVALIDATION,
    PREFIX,
    REMOVED_STDLIB_MODULES,
    STABLE_ABI_LIBRARY,
    STABLE_ABI_RUNPATH,
)
from .spec import RuntimeSpec

#: Bump when anything about how a runtime is built changes: it invalidates cached runtimes.
RECIPE_VERSION = 10

#: configure's answers it cannot find out when cross-compiling; all hold on glibc Linux.
CROSS_CONFIG_SITE = "ac_cv_file__dev_ptmx=yes\nac_cv_file__dev_ptc=no\nac_cv_buggy_getaddrinfo=no\n"

#: GCC's advice for computed-goto dispatch: without GCSE the dispatch table's address is not
#: hoisted into a register that amd64 spills (arm64 has registers enough to keep it).
EVAL_LOOP_OBJECT = "Python/ceval.o"
EVAL_LOOP_CFLAGS = {"amd64": ("-fno-gcse",)}

#: libpython3.so's RUNPATH on its own link line only (``private``: libpython3.X.so does not
#: inherit it), never in LDFLAGS, which would carry it into sysconfig's LDSHARED.
STABLE_ABI_RUNPATH_RULE = (
    f"\n{STABLE_ABI_LIBRARY}: private BLDSHARED += "
    f"-Wl,-rpath,'{STABLE_ABI_RUNPATH.replace('$', '$$')}'\n"
)


@dataclass(frozen=True)
class BuildPlan:
    """Everything that determines the compiled bits, computed without running anything."""

    host_arch: str
    cross: bool
    pgo: bool
    lto: bool
    configure_args: tuple[str, ...]
    configure_env: tuple[tuple[str, str], ...]
    extra_cflags: tuple[str, ...]  # appended to dpkg-buildflags CFLAGS
    make_vars: tuple[str, ...] = ()  # more VAR=value arguments of make and make install
    make_env: tuple[tuple[str, str], ...] = ()  # environment of make (qemu-user's CPU model)
    bolt: bool = False
    eval_loop_cflags: tuple[str, ...] = ()  # the eval loop's file only (eval_loop_rule)


def plan_build(spec: RuntimeSpec, build_host: str) -> BuildPlan:
    """The configure arguments and flags of ``spec`` on a host of arch ``build_host``.

    ``build_host`` is an input, never this machine's arch looked up behind the
    caller's back: the image job (amd64) must compute what the arm64 runtime job
    built natively on an arm64 runner. No I/O.
    """
    spec.validate()
    check_arch(build_host, UsageError)
    host = build_host
    cross = spec.arch != host
    lto = spec.profile == "release"
    pgo = spec.pgo if spec.pgo is not None else spec.profile == "release"
    version = spec.version_tuple()
    args, env = _target_args(spec, host)
    args += [
        "--enable-loadable-sqlite-extensions",
        "--enable-option-checking=fatal",
        "--enable-shared",
        "--with-ensurepip",
        "--with-system-expat",
    ]
    make_vars: list[str] = []
    _static_interpreter(version, args, make_vars)
    # Debian's -fstack-protector, not dpkg-buildflags' -strong, on CPython's own compile
    # lines only (CFLAGS_NODIST): users' extensions keep -strong from sysconfig's CFLAGS.
    make_vars.append("CFLAGS_NODIST=-fstack-protector")
    if version >= (3, 10, 0):
        # no libpython3.X.a built only to be deleted, no _testcapi, test package and the like
        args += ["--without-static-libpython", "--disable-test-modules"]
    if pgo:
        args.append("--enable-optimizations")
    if lto:
        args.append("--with-lto")
    bolt = _bolt(spec, pgo=pgo, lto=lto, cross=cross)
    if bolt:
        llvm_bolt, merge_fdata = spec.distro.bolt_tools[:2]
        args += ["--enable-bolt", f"LLVM_BOLT={llvm_bolt}", f"MERGE_FDATA={merge_fdata}"]
        # the interpreter only: libpython3.X.so is not what runs the profile task
        make_vars.append("BOLT_BINARIES=$(BUILDPYTHON)")
    make_env: list[tuple[str, str]] = []
    qemu_cpu = ARCHES[spec.arch].qemu_cpu
    if pgo and cross and qemu_cpu is not None:
        # the profile task runs the target's interpreter under qemu-user (binfmt_misc)
        make_env.append(("QEMU_CPU", qemu_cpu))
    cflags: list[str] = []
    if version >= (3, 12, 0):
        cflags += ["-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer"]
    return BuildPlan(
        host_arch=host,
        cross=cross,
        pgo=pgo,
        lto=lto,
        configure_args=tuple(args),
        configure_env=tuple(env),
        extra_cflags=tuple(cflags),
        make_vars=tuple(make_vars),
        make_env=tuple(make_env),
        bolt=bolt,
        eval_loop_cflags=EVAL_LOOP_CFLAGS.get(spec.arch, ()),
    )


def _target_args(spec: RuntimeSpec, host: str) -> tuple[list[str], list[tuple[str, str]]]:
    """``--build``, and for a cross build ``--host``, the build Python and pkg-config's
    view of the target's libraries (configure's arguments and environment)."""
    target_gnu = ARCHES[spec.arch].gnu
    args = [f"--build={ARCHES[host].gnu}"]
    env: list[tuple[str, str]] = []
    if spec.arch != host:
        args.append(f"--host={target_gnu}")
        if spec.version_tuple() >= (3, 11, 0):
            args.append(f"--with-build-python={PREFIX}/bin/python{spec.minor()}")
        # else configure finds python3.X on PATH itself: the build Python in PREFIX/bin
        env += [
            ("CONFIG_SITE", "/build/config.site"),
            ("PKG_CONFIG", "pkg-config"),
            ("PKG_CONFIG_LIBDIR", f"/usr/lib/{target_gnu}/pkgconfig:/usr/share/pkgconfig"),
        ]
    return args, env


def _static_interpreter(
    version: tuple[int, int, int], args: list[str], make_vars: list[str]
) -> None:
    """The core linked into the python3.X executable, as Debian does: no -fPIC core behind a
    PLT, no ``__tls_get_addr``; libpython3.X.so is still built from the same objects."""
    if version >= (3, 15, 0):
        args.append("--enable-static-libpython-for-interpreter")
        return
    # 3.15's option by hand: link the library's objects, and wait for those only, so the
    # two LTO links run side by side (3.9's Makefile has no LINK_PYTHON_DEPS to set)
    make_vars.append("BLDLIBRARY=$(LIBRARY_OBJS)")
    if version >= (3, 10, 0):
        make_vars.append("LINK_PYTHON_DEPS=$(LIBRARY_OBJS)")


def _bolt(spec: RuntimeSpec, *, pgo: bool, lto: bool, cross: bool) -> bool:
    """BOLT where asked for and where it works: native amd64 PGO+LTO builds of 3.12+
    whose build root has llvm-bolt."""
    return bool(
        spec.bolt
        and pgo
        and lto
        and not cross
        and spec.arch == "amd64"
        and spec.version_tuple() >= (3, 12, 0)
        and spec.distro.bolt_tools
    )


def without_opt_level(cflags: list[str]) -> list[str]:
    """dpkg-buildflags' CFLAGS without their optimisation level (Debian's ``-O2``).

    They reach the compiler line after CPython's own ``OPT`` (``-O3``), so the last ``-O``
    would win and quietly build the interpreter at ``-O2``; CPython's level is kept. The
    hardening flags stay.
    """
    return [flag for flag in cflags if not re.fullmatch(r"-O([0-9sgz]|fast)?", flag)]


def build_all_edited(makefile: str) -> str:
    """The configured Makefile's ``build_all`` without ``Programs/_testembed`` and with
    ``$(LIBRARY_DEPS)`` (``libpython3.X.so``, ``libpython3.so``) beside ``$(BUILDPYTHON)``.

    ``_testembed`` is never installed nor run by the PGO task, yet linked like the whole
    core once per PGO phase; the libraries are named because the interpreter no longer
    depends on them (``LINK_PYTHON_DEPS``). Raises BuildError without a ``build_all``
    rule. No I/O.
    """
    lines = makefile.split("\n")
    for start, line in enumerate(lines):
        if not line.startswith("build_all:"):
            continue
        end = start
        while lines[end].endswith("\\") and end + 1 < len(lines):
            end += 1
        for i in range(start, end + 1):
            lines[i] = re.sub(r"[ \t]+Programs/_testembed(?=[ \t\\]|$)", "", lines[i])
        rule = lines[start : end + 1]
        if not any("$(LIBRARY_DEPS)" in part for part in rule):
            libs = "$(BUILDPYTHON) $(LIBRARY_DEPS)"
            lines[start] = lines[start].replace("$(BUILDPYTHON)", libs, 1)
            if "$(LIBRARY_DEPS)" not in lines[start]:
                raise BuildError("the configured Makefile's build_all has no $(BUILDPYTHON)")
        return "\n".join(lines)
    raise BuildError("the configured Makefile has no build_all rule")


def eval_loop_rule(cflags: tuple[str, ...]) -> str:
    """Makefile lines giving the eval loop's object ``cflags`` of its own ('' for none).

    A target-specific ``PY_CFLAGS_NODIST``, because ``make profile-opt`` overrides
    ``CFLAGS_NODIST`` on its sub-makes' command lines and sysconfig must not carry it.
    No I/O.
    """
    if not cflags:
        return ""
    return f"\n{EVAL_LOOP_OBJECT}: PY_CFLAGS_NODIST += {' '.join(cflags)}\n"


def runtime_key(spec: RuntimeSpec, build_host: str) -> str:
    """The cache key: what was built and how. No I/O.

    What: CPython version and source sha256, OS release, target arch, profile. How: the
    recipe version and the whole plan, which follow from ``build_host``, the arch the
    compiler ran on: the only trace of the build machine (no host name, CPU or kernel),
    so any runner of that arch computes the same key, and a native arm64 build is never
    taken for one cross-compiled on amd64.
    """
    plan = plan_build(spec, build_host)
    root = BuildRootSpec(spec.distro, plan.host_arch)
    return cache_key(
        {
            "recipe": RECIPE_VERSION,
            "version": spec.version,
            "source_sha256": spec.source_sha256,
            "os": spec.distro.os,
            "release": spec.distro.release,
            "arch": spec.arch,
            "profile": spec.profile,
            "host_arch": plan.host_arch,
            "pgo": plan.pgo,
            "lto": plan.lto,
            "configure_args": list(plan.configure_args),
            "configure_env": [list(pair) for pair in plan.configure_env],
            "extra_cflags": list(plan.extra_cflags),
            "make_vars": list(plan.make_vars),
            "make_env": [list(pair) for pair in plan.make_env],
            "bolt": plan.bolt,
            "eval_loop_cflags": list(plan.eval_loop_cflags),
            "bytecode": BYTECODE_INVALIDATION,
            "removed_modules": sorted(REMOVED_STDLIB_MODULES),
            "buildroot": buildroot_key(root),
            "cross_config_site": CROSS_CONFIG_SITE if plan.cross else None,
        }
    )
