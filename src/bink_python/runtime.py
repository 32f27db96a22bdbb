"""CPython runtimes: compiled once per (source, OS release, arch, profile), cached.

The runtime is CPython built from the verified source tarball in a build root of
the same OS release (``buildroot.py``), installed under ``/usr/local`` into a
staging directory, cleaned like the reference images (done right), stripped, and
packaged as a deterministic tar whose paths start with ``usr/local/``. arm64 is
cross-compiled on an amd64 host (and the other way round): the build Python of the
same version is the host-arch runtime of the same profile, mounted at ``/usr/local`` in the
build root so ``ensurepip`` installs pip with the right prefix and shebangs.

Beside the tarball, ``record.json`` says what was built and how, and which shared
libraries (ELF ``NEEDED``) it links, mapped to the distribution packages that
provide them; these must all be in the distro's ``runtime_packages``.

Store layout (kind ``runtimes``)::

    runtimes/<key>/runtime.tar    the /usr/local tree
    runtimes/<key>/record.json
    runtimes/<key>/build.log      the full build log
    logs/runtime-<key>-<time>-<pid>.log   the log of each attempt (kept on failure)
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from .binfmt import QEMU_CPU, ensure_binfmt
from .buildroot import BuildRootSpec, buildroot_key, ensure_buildroot, host_arch, run_in_root
from .distro import ARCHES, Distro, check_arch
from .errors import BuildError, FetchError, UsageError
from .progress import SILENT, Progress
from .store import Store, cache_key, read_json, sha256_file, write_json
from .tarball import is_elf, write_tree_tar_file

#: Bump when anything about how a runtime is built changes (invalidates cached runtimes).
RECIPE_VERSION = 3

PROFILES = ("release", "fast")
PREFIX = "/usr/local"

#: Standard-library modules (names of ``sys.stdlib_module_names``) the runtime deliberately
#: leaves out, and why: the one list. The build removes them (or does not build them), the
#: verify stage imports every other stdlib module of the platform, the README lists them.
REMOVED_STDLIB_MODULES: dict[str, str] = {
    "_tkinter": "Tk bindings (C part): the images ship no Tk, so it is not built",
    "tkinter": "Tk GUI toolkit: needs _tkinter and a display",
    "idlelib": "the IDLE editor (and the idle command): a Tk GUI",
    "turtle": "turtle graphics: a Tk GUI",
    "turtledemo": "turtle graphics demos: a Tk GUI",
}

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

#: Directories removed from the installed tree wherever they are (reference cleanup).
REMOVED_DIRS = frozenset({"test", "tests", "idle_test"})

#: Commands of removed modules, removed from bin/ (``idle3`` and ``idle3.13`` for ``idle``).
REMOVED_COMMANDS = ("idle",)

#: Test extension modules, removed from lib-dynload where ``--disable-test-modules`` does
#: not exist (3.9) or misses one: ``_testcapi``, ``xxlimited``, ``_ctypes_test``...
TEST_EXTENSION_RE = re.compile(r"^(_test|_xxtest|xx|_ctypes_test)")

#: Unversioned names made in bin/ for the versioned-3 commands.
UNVERSIONED_LINKS = ("pip3", "pydoc3", "python3", "python3-config")

#: How the shipped stdlib bytecode is validated against its source (PEP 552). See
#: :func:`compile_bytecode` for why.
BYTECODE_INVALIDATION = "timestamp"

_ELF_MACHINES = {62: "x86-64", 183: "AArch64"}

_SUMMARY_HEADERS = {
    "The necessary bits to build these optional modules were not found:": "missing",
    "Failed to build these modules:": "failed",
    "Following modules built successfully but were removed because they could not be "
    "imported:": "removed",
    "Failed to build these modules (core):": "failed",
}

#: configure answers it cannot find out when cross-compiling (it cannot run the target's
#: programs); the target is glibc Linux, where all of these hold.
CROSS_CONFIG_SITE = "ac_cv_file__dev_ptmx=yes\nac_cv_file__dev_ptc=no\nac_cv_buggy_getaddrinfo=no\n"

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class RuntimeSpec:
    version: str  # "3.13.15"
    source_sha256: str
    distro: Distro
    arch: str  # "amd64" | "arm64"
    profile: str = "release"  # "release" | "fast"
    pgo: bool | None = None  # None: release -> PGO on native builds, off for cross builds

    def minor(self) -> str:
        """``3.13`` for ``3.13.15``."""
        return ".".join(self.version.split(".")[:2])

    def version_tuple(self) -> tuple[int, int, int]:
        match = _VERSION_RE.match(self.version)
        if not match:
            raise UsageError(f"bad CPython version {self.version!r}: expected X.Y.Z, e.g. 3.13.15")
        return int(match[1]), int(match[2]), int(match[3])

    def validate(self) -> None:
        self.version_tuple()
        check_arch(self.arch, UsageError)
        if self.profile not in PROFILES:
            raise UsageError(
                f"unknown runtime profile {self.profile!r}: expected one of {', '.join(PROFILES)}"
            )
        if self.profile == "fast" and self.pgo:
            raise UsageError("the fast profile builds without PGO: use --profile release for PGO")
        if not re.fullmatch(r"[0-9a-f]{64}", self.source_sha256):
            raise UsageError(f"bad source sha256 {self.source_sha256!r}: expected 64 hex digits")


@dataclass(frozen=True)
class RuntimeResult:
    spec: RuntimeSpec
    key: str
    tarball: Path
    record: dict[str, Any]
    cached: bool


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
    extra_ldflags: tuple[str, ...]  # appended to dpkg-buildflags LDFLAGS
    make_vars: tuple[str, ...] = ()  # more VAR=value arguments of make and make install
    make_env: tuple[tuple[str, str], ...] = ()  # environment of make (qemu-user's CPU model)
    bolt: bool = False


def plan_build(spec: RuntimeSpec, build_host: str | None = None) -> BuildPlan:
    """The configure arguments and flags of ``spec`` on a host of arch ``build_host``."""
    spec.validate()
    host = build_host or host_arch()
    cross = spec.arch != host
    lto = spec.profile == "release"
    pgo = spec.pgo if spec.pgo is not None else spec.profile == "release"
    version = spec.version_tuple()
    build_gnu = ARCHES[host]["gnu"]
    target_gnu = ARCHES[spec.arch]["gnu"]
    args = [f"--build={build_gnu}"]
    env: list[tuple[str, str]] = []
    if cross:
        args += [f"--host={target_gnu}", f"--with-build-python={PREFIX}/bin/python{spec.minor()}"]
        env += [
            ("CONFIG_SITE", "/build/config.site"),
            ("PKG_CONFIG", "pkg-config"),
            ("PKG_CONFIG_LIBDIR", f"/usr/lib/{target_gnu}/pkgconfig:/usr/share/pkgconfig"),
        ]
    args += [
        "--enable-loadable-sqlite-extensions",
        "--enable-option-checking=fatal",
        "--enable-shared",
        "--with-ensurepip",
        "--with-system-expat",
    ]
    make_vars: list[str] = []
    # The interpreter core linked into the python3.X executable (Debian's layout): no
    # -fPIC core behind a PLT, thread state at a fixed offset from the thread pointer
    # instead of __tls_get_addr. libpython3.X.so is still built and shipped for
    # embedders, from the same objects.
    if version >= (3, 15, 0):
        args.append("--enable-static-libpython-for-interpreter")
    else:
        # what 3.15's option does, for 3.9 to 3.14: every version's Makefile links the
        # interpreter with $(BLDLIBRARY) (-L. -lpython3.X for shared builds); linking the
        # library's own objects instead is the non-shared build's link line
        make_vars.append("BLDLIBRARY=$(LIBRARY_OBJS)")
    if version >= (3, 10, 0):
        # no libpython3.X.a built only to be deleted, no _testcapi, test package and the like
        args += ["--without-static-libpython", "--disable-test-modules"]
    if pgo:
        args.append("--enable-optimizations")
    if lto:
        args.append("--with-lto")
    bolt = bool(
        pgo
        and lto
        and not cross
        and spec.arch == "amd64"
        and version >= (3, 12, 0)
        and spec.distro.bolt_tools
    )
    if bolt:
        llvm_bolt, merge_fdata = spec.distro.bolt_tools[:2]
        args += ["--enable-bolt", f"LLVM_BOLT={llvm_bolt}", f"MERGE_FDATA={merge_fdata}"]
        # the interpreter only: libpython3.X.so is not what runs the profile task
        make_vars.append("BOLT_BINARIES=$(BUILDPYTHON)")
    make_env: list[tuple[str, str]] = []
    if pgo and cross and spec.arch in QEMU_CPU:
        # the profile task runs the target's interpreter under qemu-user (binfmt_misc)
        make_env.append(("QEMU_CPU", QEMU_CPU[spec.arch]))
    cflags: list[str] = []
    if version >= (3, 12, 0):
        cflags += ["-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer"]
    # '$$' is make's escape; the single quotes keep the shell from expanding $ORIGIN
    ldflags = ["-Wl,-rpath='$$ORIGIN/../lib'"]
    return BuildPlan(
        host_arch=host,
        cross=cross,
        pgo=pgo,
        lto=lto,
        configure_args=tuple(args),
        configure_env=tuple(env),
        extra_cflags=tuple(cflags),
        extra_ldflags=tuple(ldflags),
        make_vars=tuple(make_vars),
        make_env=tuple(make_env),
        bolt=bolt,
    )


def without_opt_level(cflags: list[str]) -> list[str]:
    """dpkg-buildflags' CFLAGS without their optimisation level (Debian's ``-O2``).

    They reach the compiler line after CPython's own ``OPT`` (``-O3``), so the last ``-O``
    would win and quietly build the interpreter at ``-O2``; CPython's level is kept. The
    hardening flags stay.
    """
    return [flag for flag in cflags if not re.fullmatch(r"-O([0-9sgz]|fast)?", flag)]


def runtime_key(spec: RuntimeSpec) -> str:
    """The cache key: source, OS release, arch, profile, flags, build root, recipe. No I/O."""
    plan = plan_build(spec)
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
            "extra_ldflags": list(plan.extra_ldflags),
            "make_vars": list(plan.make_vars),
            "make_env": [list(pair) for pair in plan.make_env],
            "bolt": plan.bolt,
            "bytecode": BYTECODE_INVALIDATION,
            "removed_modules": sorted(REMOVED_STDLIB_MODULES),
            "buildroot": buildroot_key(root),
            "cross_config_site": CROSS_CONFIG_SITE if plan.cross else None,
        }
    )


def _cached(spec: RuntimeSpec, key: str, store: Store) -> RuntimeResult | None:
    entry = store.lookup("runtimes", key)
    if entry is None:
        return None
    tar = entry / "runtime.tar"
    rec = entry / "record.json"
    if not (tar.is_file() and rec.is_file()):
        return None
    return RuntimeResult(spec=spec, key=key, tarball=tar, record=read_json(rec), cached=True)


def build_runtime(
    spec: RuntimeSpec,
    source: Path,
    store: Store,
    *,
    epoch: int,
    mirror: str | None = None,
    progress: Progress = SILENT,
    jobs: int | None = None,
    force: bool = False,
) -> RuntimeResult:
    """Build (or take from the cache) the CPython runtime of ``spec`` from ``source``.

    The runtime's timestamps (``SOURCE_DATE_EPOCH`` of the compile, clamped mtimes of
    the tar) come from the source release (the newest member of the source tarball),
    not from ``epoch``: an image rebuilt with a new epoch (a base security update) must
    reuse the same runtime bytes, so ``epoch`` is not part of the key and is only
    noted in the record (``requested_epoch``).
    """
    key = runtime_key(spec)
    if not force:
        hit = _cached(spec, key, store)
        if hit is not None:
            return hit
    with store.lock("runtimes", key):
        if not force:
            hit = _cached(spec, key, store)
            if hit is not None:
                return hit
        return _build(
            spec,
            key,
            source,
            store,
            epoch=epoch,
            mirror=mirror,
            progress=progress,
            jobs=jobs or os.cpu_count() or 1,
        )


def _build(
    spec: RuntimeSpec,
    key: str,
    source: Path,
    store: Store,
    *,
    epoch: int,
    mirror: str | None,
    progress: Progress,
    jobs: int,
) -> RuntimeResult:
    plan = plan_build(spec)
    subject = f"CPython {spec.version} {spec.distro.name} {spec.arch} ({spec.profile})"
    if not source.is_file():
        raise FetchError(f"CPython source {source} does not exist: run the fetch stage first")
    actual = sha256_file(source)
    if actual != spec.source_sha256:
        raise FetchError(
            f"CPython source {source} has sha256 {actual}, expected {spec.source_sha256}: "
            "delete it and fetch again"
        )
    started = time.monotonic()
    with progress.step("buildroot", f"{spec.distro.name} {plan.host_arch}"):
        root = ensure_buildroot(
            BuildRootSpec(spec.distro, plan.host_arch), store, mirror=mirror, progress=progress
        )
    build_python: RuntimeResult | None = None
    if plan.cross:
        # the build Python of the same version: the host-arch runtime of the same
        # profile (cached; the pipeline builds it anyway for the host-arch image). It
        # only runs build scripts and ensurepip (pure Python), so it is not in the key.
        build_python = build_runtime(
            replace(spec, arch=plan.host_arch, pgo=None),
            source,
            store,
            epoch=epoch,
            mirror=mirror,
            progress=progress,
            jobs=jobs,
        )
    if plan.make_env:
        # the PGO profile task of a cross build runs the target's interpreter under qemu-user
        ensure_binfmt(spec.arch)
    # one log per attempt: a failed attempt's log survives the next attempt
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    log = store.root / "logs" / f"runtime-{key}-{stamp}-{os.getpid()}.log"
    work_parent = store.root / "work"
    work_parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"runtime-{key}-", dir=work_parent))
    try:
        with store.building("runtimes", key) as entry:
            record = _compile_and_package(
                spec,
                plan,
                key,
                source,
                root,
                work,
                entry,
                log,
                build_python=build_python,
                progress=progress,
                jobs=jobs,
                subject=subject,
            )
            record["requested_epoch"] = epoch
            record["build_seconds"] = round(time.monotonic() - started, 1)
            write_json(entry / "record.json", record)
            shutil.copyfile(log, entry / "build.log")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    final = store.path("runtimes", key)
    return RuntimeResult(
        spec=spec,
        key=key,
        tarball=final / "runtime.tar",
        record=read_json(final / "record.json"),
        cached=False,
    )


def _compile_and_package(
    spec: RuntimeSpec,
    plan: BuildPlan,
    key: str,
    source: Path,
    root: Path,
    work: Path,
    entry: Path,
    log: Path,
    *,
    build_python: RuntimeResult | None,
    progress: Progress,
    jobs: int,
    subject: str,
) -> dict[str, Any]:
    target_gnu = ARCHES[spec.arch]["gnu"]
    src = work / "src"
    stage = work / "stage"
    src.mkdir()
    stage.mkdir()
    ro_binds: list[tuple[Path, str]] = []
    if build_python is not None:
        buildpy = work / "buildpy"
        buildpy.mkdir()
        with tarfile.open(build_python.tarball) as tar:
            tar.extractall(buildpy, filter="tar")
        # without its own pip: ensurepip (run by `make install` with the build Python)
        # would find pip already installed and put nothing into the staging root
        site = buildpy / PREFIX.lstrip("/") / "lib" / f"python{spec.minor()}" / "site-packages"
        for item in site.iterdir() if site.is_dir() else []:
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item)
            else:
                item.unlink()
        ro_binds.append((buildpy / PREFIX.lstrip("/"), PREFIX))
        (work / "config.site").write_text(CROSS_CONFIG_SITE)

    with tarfile.open(source) as tar:
        members = [m for m in tar.getmembers() if "/" in m.name]
        for member in members:
            member.name = member.name.split("/", 1)[1]
        tar.extractall(src, members=members, filter="tar")
    # the release time of the source is the runtime's SOURCE_DATE_EPOCH
    epoch = max(int(m.mtime) for m in members)

    def inside(
        argv: list[str], what: str, *, env: dict[str, str] | None = None, logged: bool = True
    ) -> str:
        return run_in_root(
            root,
            argv,
            work=work,
            what=what,
            log=log if logged else None,
            env={"SOURCE_DATE_EPOCH": str(epoch), **(env or {})},
            ro_binds=ro_binds,
            cwd="/build/src",
        )

    with progress.step("configure", subject):
        dpkg_arch = ["dpkg-architecture", f"-a{spec.arch}", "-c", "dpkg-buildflags", "--get"]
        cflags = without_opt_level(
            inside([*dpkg_arch, "CFLAGS"], "dpkg-buildflags", logged=False).split()
        )
        ldflags = inside([*dpkg_arch, "LDFLAGS"], "dpkg-buildflags", logged=False).split()
        cc = f"{target_gnu}-gcc"
        if plan.extra_cflags:
            inside(
                [
                    cc,
                    "-Werror",
                    *plan.extra_cflags,
                    "-x",
                    "c",
                    "-c",
                    "/dev/null",
                    "-o",
                    "/tmp/flags-check.o",
                ],
                f"{cc} accepting {' '.join(plan.extra_cflags)}",
            )
        compiler = inside([cc, "--version"], f"{cc} --version", logged=False).splitlines()[0]
        make_vars = [
            f"EXTRA_CFLAGS={' '.join([*cflags, *plan.extra_cflags])}",
            f"LDFLAGS={' '.join([*ldflags, *plan.extra_ldflags])}",
            *plan.make_vars,
        ]
        inside(
            ["./configure", *plan.configure_args],
            f"configure ({subject})",
            env=dict(plan.configure_env),
        )
    with progress.step("make", subject):
        inside(["make", f"-j{jobs}", *make_vars], f"make ({subject})", env=dict(plan.make_env))
        summary = parse_module_summary(log.read_text(errors="replace"))
        check_module_summary(summary, subject, log)
    with progress.step("install", subject):
        inside(["make", "install", "DESTDIR=/build/stage", *make_vars], f"make install ({subject})")
    with progress.step("package", subject):
        local = stage / PREFIX.lstrip("/")
        tops = sorted(p.name for p in stage.iterdir())
        if tops != ["usr"] or sorted(p.name for p in (stage / "usr").iterdir()) != ["local"]:
            raise BuildError(f"make install wrote outside {PREFIX} ({tops}); full log: {log}")
        clean_tree(local)
        remove_unshipped(local, spec.minor())
        elves = sorted(p for p in local.rglob("*") if is_elf(p))
        inside(
            [
                f"{target_gnu}-strip",
                "--strip-unneeded",
                *(f"/build/{p.relative_to(work)}" for p in elves),
            ],
            f"strip ({subject})",
        )
        make_links(local / "bin")
        check_pip(local, spec)
        check_static_interpreter(local, spec.minor(), log)
        # the interpreter that compiles: the one just built, or the build Python (same
        # version: the same bytecode) when the built one cannot run here
        compiler_python = (
            f"{PREFIX}/bin/python{spec.minor()}"
            if plan.cross
            else f"/build/stage{PREFIX}/bin/python{spec.minor()}"
        )
        bytecode = compile_bytecode(
            local,
            spec.minor(),
            epoch,
            lambda argv: inside(argv, f"compileall ({subject})", env={"PYTHONHASHSEED": "0"}),
            python=compiler_python,
        )
        machine = ARCHES[spec.arch]["elf_machine"]
        for elf in elves:
            if str(elf_machine(elf)) != machine:
                raise BuildError(
                    f"{elf.relative_to(stage)} is for ELF machine {elf_machine(elf)}, "
                    f"expected {machine} ({spec.arch}); full log: {log}"
                )
        extensions = extension_modules(local, spec.minor())
        _check_extensions(extensions, build_python, subject)
        needed = {soname for elf in elves for soname in elf_needed(elf)}
        own = {p.name for p in elves}
        external = sorted(needed - own)
        lib_packages = _packages_of(external, spec, inside)
        _check_packages(lib_packages, spec.distro, subject)
        sha, size = write_tree_tar_file(stage, entry / "runtime.tar", epoch=epoch)
    return {
        "recipe": RECIPE_VERSION,
        "key": key,
        "version": spec.version,
        "source_sha256": spec.source_sha256,
        "os": spec.distro.os,
        "release": spec.distro.release,
        "arch": spec.arch,
        "build_host_arch": plan.host_arch,
        "cross_compiled": plan.cross,
        "elf_machine": _ELF_MACHINES.get(int(machine), machine),
        "profile": spec.profile,
        "pgo": plan.pgo,
        "lto": plan.lto,
        "configure_args": list(plan.configure_args),
        "configure_env": dict(plan.configure_env),
        "make_vars": make_vars,
        "compiler": compiler,
        "build_python": build_python.key if build_python else None,
        "source_epoch": epoch,
        "built_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "needed_libraries": lib_packages,
        "packages": sorted(set(lib_packages.values())),
        "extension_modules": sorted(extensions),
        "static_interpreter": True,
        "bolt": plan.bolt,
        "make_env": dict(plan.make_env),
        "removed_modules": sorted(REMOVED_STDLIB_MODULES),
        "bytecode": bytecode,
        "tarball": "runtime.tar",
        "size": size,
        "sha256": sha,
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


def _check_extensions(
    extensions: set[str], build_python: RuntimeResult | None, subject: str
) -> None:
    missing = REQUIRED_EXTENSIONS - extensions
    if build_python is not None:
        # every module of the native build of the same version must exist cross-built too
        missing |= set(build_python.record.get("extension_modules", [])) - extensions
    if missing:
        raise BuildError(
            f"{subject}: extension modules missing from lib-dynload: "
            f"{', '.join(sorted(missing))}; check the build log for why they were skipped"
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


def check_static_interpreter(local: Path, minor: str, log: Path) -> None:
    """``python3.X`` carries the interpreter core; ``libpython3.X.so`` still ships."""
    python = local / "bin" / f"python{minor}"
    linked = [name for name in elf_needed(python) if name.startswith("libpython")]
    if linked:
        raise BuildError(
            f"bin/python{minor} links {', '.join(linked)}: the interpreter core was not "
            f"linked into the executable (the static-core link of plan_build did not apply); "
            f"full log: {log}"
        )
    if not list((local / "lib").glob(f"libpython{minor}*.so*")):
        raise BuildError(f"lib/libpython{minor}.so was not installed; full log: {log}")


def compile_bytecode(
    local: Path,
    minor: str,
    epoch: int,
    run: Callable[[list[str]], object],
    *,
    python: str,
) -> dict[str, Any]:
    """Compile the standard library's bytecode into the staged tree, reproducibly.

    At the interpreter's default optimisation level (plain ``.cpython-3X.pyc``, no
    ``.opt-1``/``.opt-2``), excluding site-packages (pip writes its own). The
    invalidation mode is :data:`BYTECODE_INVALIDATION`, ``timestamp``: the interpreter's
    default, validated by the ``stat`` the import system makes anyway (no source read,
    unlike ``checked-hash``), and still correct when a derived image edits a stdlib file
    (``unchecked-hash`` would keep running the old bytecode). The source mtimes it records
    are first clamped to ``epoch``, exactly as the tar writer clamps them, so every ``.pyc``
    matches its source in the image. ``PYTHONHASHSEED=0`` and one process keep the bytes
    identical from build to build.
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


def check_pip(local: Path, spec: RuntimeSpec) -> None:
    """pip is installed and its scripts run this runtime's interpreter."""
    pip = local / "bin" / "pip3"
    if not pip.is_file():
        raise BuildError(f"pip3 is missing from {local / 'bin'}: ensurepip did not run")
    first = pip.read_bytes().split(b"\n", 1)[0].decode(errors="replace")
    expected = f"#!{PREFIX}/bin/python{spec.minor()}"
    if first != expected:
        raise BuildError(f"pip3 starts with {first!r}, expected {expected!r}")


def elf_machine(path: Path) -> int:
    """``e_machine`` of an ELF file (62 x86-64, 183 AArch64)."""
    with open(path, "rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise BuildError(f"{path} is not an ELF file")
    order: Literal["little", "big"] = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], order)


def elf_needed(path: Path) -> list[str]:
    """The ``DT_NEEDED`` entries of an ELF file, read with a small ELF parser."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        raise BuildError(f"{path} is not an ELF file")
    is64 = data[4] == 2
    order: Literal["little", "big"] = "little" if data[5] == 1 else "big"

    def num(offset: int, size: int) -> int:
        return int.from_bytes(data[offset : offset + size], order)

    if is64:
        phoff, phentsize, phnum = num(32, 8), num(54, 2), num(56, 2)
    else:
        phoff, phentsize, phnum = num(28, 4), num(42, 2), num(44, 2)
    word = 8 if is64 else 4
    loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        base = phoff + i * phentsize
        p_type = num(base, 4)
        if is64:
            p_offset, p_vaddr, p_filesz = num(base + 8, 8), num(base + 16, 8), num(base + 32, 8)
        else:
            p_offset, p_vaddr, p_filesz = num(base + 4, 4), num(base + 8, 4), num(base + 16, 4)
        if p_type == 1:  # PT_LOAD
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:  # PT_DYNAMIC
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []

    def file_offset(vaddr: int) -> int:
        for start, offset, size in loads:
            if start <= vaddr < start + size:
                return offset + vaddr - start
        raise BuildError(f"{path}: dynamic string table outside loaded segments")

    needed: list[int] = []
    strtab = None
    pos, end = dynamic[0], dynamic[0] + dynamic[1]
    while pos + 2 * word <= end:
        tag, value = num(pos, word), num(pos + word, word)
        pos += 2 * word
        if tag == 0:  # DT_NULL
            break
        if tag == 1:  # DT_NEEDED
            needed.append(value)
        elif tag == 5:  # DT_STRTAB
            strtab = file_offset(value)
    if strtab is None:
        return []
    names = []
    for offset in needed:
        start = strtab + offset
        names.append(data[start : data.index(b"\0", start)].decode())
    return names


def _packages_of(sonames: list[str], spec: RuntimeSpec, inside: Any) -> dict[str, str]:
    """Map each shared library name to the target-arch package providing it (dpkg -S)."""
    if not sonames:
        return {}
    gnu = ARCHES[spec.arch]["gnu"]
    patterns = [f"*/{gnu}/{name}" for name in sonames]
    out: str = inside(
        ["sh", "-c", 'dpkg-query -S "$@" 2>/dev/null || true', "sh", *patterns],
        "dpkg-query -S",
        logged=False,
    )
    found = parse_dpkg_search(out, sonames, spec.arch)
    unknown = [name for name in sonames if name not in found]
    if unknown:
        raise BuildError(
            f"no {spec.arch} package in the build root provides {', '.join(unknown)}: "
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


def _check_packages(lib_packages: dict[str, str], distro: Distro, subject: str) -> None:
    allowed = set(distro.runtime_packages) | ALWAYS_PRESENT_PACKAGES
    missing = sorted({f"{pkg} ({lib})" for lib, pkg in lib_packages.items() if pkg not in allowed})
    if missing:
        raise BuildError(
            f"{subject} links libraries from packages not in {distro.name}'s runtime_packages: "
            f"{', '.join(missing)}; add them in distro.py"
        )
