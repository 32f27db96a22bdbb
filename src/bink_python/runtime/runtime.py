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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import BuildError, FetchError, UsageError
from ..family.versions import parse_cpython_version
from ..host.arch import ARCHES, check_arch, host_arch
from ..host.binfmt import ensure_binfmt
from ..host.distro import Distro
from ..host.progress import SILENT, CPythonOutput, Progress, count_compiles
from ..oci.tarball import is_elf, write_tree_tar_file
from ..store.kinds import RUNTIMES
from ..store.store import Store, cache_key, read_json, sha256_file, write_json
from .buildroot import BuildRootSpec, buildroot_key, ensure_buildroot, run_in_root
from .contents import (
    BYTECODE_INVALIDATION,
    PREFIX,
    REMOVED_STDLIB_MODULES,
    STABLE_ABI_LIBRARY,
    STABLE_ABI_RUNPATH,
    check_extensions,
    check_module_summary,
    check_packages,
    check_pip,
    check_runpaths,
    check_static_interpreter,
    clean_tree,
    compile_bytecode,
    extension_modules,
    make_links,
    packages_of,
    parse_module_summary,
    remove_unshipped,
)
from .elf import ElfError, ElfInfo, read_elf_of_arch

#: Bump when anything about how a runtime is built changes (invalidates cached runtimes).
#: (4 and 5 were candidates measured slower and never adopted: bench comparisons 7 and 10.
#: 7: the interpreter's own compile lines get -fstack-protector: bench comparison 13.
#: 8: and dpkg-buildflags' CPPFLAGS: -D_FORTIFY_SOURCE=2, as Debian's python3.X.
#: 9: the eval loop's file compiled with -fno-gcse (EVAL_LOOP_CFLAGS).
#: 10: a RUNPATH on libpython3.so only (STABLE_ABI_RUNPATH_RULE), not on every ELF file
#: and in sysconfig's LDSHARED.)
RECIPE_VERSION = 10

PROFILES = ("release", "fast")

#: configure answers it cannot find out when cross-compiling (it cannot run the target's
#: programs); the target is glibc Linux, where all of these hold.
CROSS_CONFIG_SITE = "ac_cv_file__dev_ptmx=yes\nac_cv_file__dev_ptc=no\nac_cv_buggy_getaddrinfo=no\n"

#: The bytecode loop's own file, compiled with GCC's advice for computed-goto dispatch:
#: "you may get better run-time performance if you disable the global common
#: subexpression elimination pass" (GCC's manual, -fgcse). GCSE hoists the dispatch
#: table's address out of the loop into a register that, with %rbp a frame pointer and
#: the core position-independent, is spilled: every dispatch then reloads it from the
#: stack. Without GCSE the address is one `lea` before each jump. The flag reaches the
#: link-time code generator with the file's functions (GCC keeps optimisation options per
#: function under LTO). amd64 only: arm64's 31 registers hold it, and there the flag left
#: the loop with more stack accesses, not fewer (a plain -O3 compile of ceval.c both ways
#: with GCC 14: bench comparison 15). Measured on 3.13 (comparisons 14 and 15); the other
#: versions' loops dispatch the same way and get it too.
EVAL_LOOP_OBJECT = "Python/ceval.o"
EVAL_LOOP_CFLAGS = {"amd64": ("-fno-gcse",)}

#: libpython3.so's RUNPATH (see STABLE_ABI_RUNPATH), set on its link line only: a
#: target-specific BLDSHARED, ``private`` so that libpython3.X.so, linked as its
#: prerequisite, does not inherit it. Not in LDFLAGS, which reach every link and, through
#: the environment make exports to the sysconfig step, sysconfig's LDSHARED, so every
#: extension users build would carry it too. (``$$``: make's escape; the single quotes
#: keep the shell from expanding $ORIGIN.)
STABLE_ABI_RUNPATH_RULE = (
    f"\n{STABLE_ABI_LIBRARY}: private BLDSHARED += "
    f"-Wl,-rpath,'{STABLE_ABI_RUNPATH.replace('$', '$$')}'\n"
)


@dataclass(frozen=True)
class RuntimeSpec:
    version: str  # "3.13.15"
    source_sha256: str
    distro: Distro
    arch: str  # "amd64" | "arm64"
    profile: str = "release"  # "release" | "fast"
    pgo: bool | None = None  # None: PGO for release builds (the cross builds' profile under qemu)
    #: BOLT after PGO (amd64 release builds of 3.12+ where the build root has llvm-bolt;
    #: skipped where not). Off by default: measured 0.98x (slower) on 3.13 here (bench
    #: comparison 10); it also needs -fno-reorder-blocks-and-partition and a non-PIE link.
    bolt: bool = False

    def minor(self) -> str:
        """``3.13`` for ``3.13.15``."""
        return ".".join(self.version.split(".")[:2])

    def version_tuple(self) -> tuple[int, int, int]:
        parsed = parse_cpython_version(self.version)
        if parsed is None:
            raise UsageError(f"bad CPython version {self.version!r}: expected X.Y.Z, e.g. 3.13.15")
        return parsed.major, parsed.minor, parsed.patch

    def validate(self) -> None:
        self.version_tuple()
        check_arch(self.arch, UsageError)
        if self.profile not in PROFILES:
            raise UsageError(
                f"unknown runtime profile {self.profile!r}: expected one of {', '.join(PROFILES)}"
            )
        if self.profile == "fast" and (self.pgo or self.bolt):
            raise UsageError(
                "the fast profile builds without PGO or BOLT: use --profile release for them"
            )
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
    build_gnu = ARCHES[host].gnu
    target_gnu = ARCHES[spec.arch].gnu
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
        # ...and waits for those objects only, not for libpython3.X.so: the two links
        # (each one compiler process under LTO, minutes long) run side by side instead of
        # one after the other. build_all_edited puts the library in build_all. (A Makefile
        # without LINK_PYTHON_DEPS, which 3.11 has, ignores it and keeps its serial links.)
        make_vars.append("LINK_PYTHON_DEPS=$(LIBRARY_OBJS)")
    # Debian builds its own python3.X with -fstack-protector: canaries in the functions that
    # hold a character array. dpkg-buildflags' -strong adds every function that takes a
    # local's address: in the 3.13 executable about 1600 canaries against Debian's 70 (26
    # with this), the eval loop and dict lookups among them. Measured 1.01x faster (bench
    # comparison 13). CFLAGS_NODIST comes after EXTRA_CFLAGS on CPython's own compile
    # lines (the core, the stdlib's modules), so it wins there; it is not in sysconfig's
    # CFLAGS, so the extensions users build against the runtime keep -strong.
    make_vars.append("CFLAGS_NODIST=-fstack-protector")
    if version >= (3, 10, 0):
        # no libpython3.X.a built only to be deleted, no _testcapi, test package and the like
        args += ["--without-static-libpython", "--disable-test-modules"]
    if pgo:
        args.append("--enable-optimizations")
    if lto:
        args.append("--with-lto")
    bolt = bool(
        spec.bolt
        and pgo
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

    ``_testembed`` runs CPython's own embedding tests (``test_embed``) and is never
    installed, nor run by the PGO profile task (``-m test --pgo``); linked like the
    interpreter (the whole core; under LTO one compiler process) it cost two serial
    whole-core links of a release build, one per PGO phase. The libraries are named
    because the interpreter no longer depends on them (``LINK_PYTHON_DEPS``, see
    plan_build) and must still be built and installed (a Makefile before 3.11 has no
    ``LIBRARY_DEPS``: there it is empty, and the interpreter still depends on them).
    Raises BuildError without a ``build_all`` rule. No I/O.
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

    A target-specific ``PY_CFLAGS_NODIST``: on that object's compile line only, after the
    other flags (so it wins), in both PGO phases: ``make profile-opt`` sets
    ``CFLAGS_NODIST`` on its sub-makes' command lines, which would override a
    target-specific ``CFLAGS_NODIST``, never ``PY_CFLAGS_NODIST``. Not in sysconfig: the
    extensions users build do not get it. No I/O.
    """
    if not cflags:
        return ""
    return f"\n{EVAL_LOOP_OBJECT}: PY_CFLAGS_NODIST += {' '.join(cflags)}\n"


def runtime_key(spec: RuntimeSpec, build_host: str) -> str:
    """The cache key: what was built and how. No I/O.

    What: CPython version and source sha256, OS release, target arch, profile. How:
    the recipe version, PGO/LTO, the configure arguments, environment and flags, the
    build root's identity, and whether it was cross-compiled, all of which follow
    from ``build_host``, the arch the compiler ran on. That is the only trace of the
    build machine: no host name, CPU model or kernel, so any runner of that arch
    computes the same key. A native arm64 build (an arm64 runner: PGO, native
    toolchain, arm64 build root) and an arm64 build cross-compiled on amd64 (its
    PGO profile run under qemu-user, cross toolchain, amd64 build root) are different
    builds and get different keys: one is never taken for the other.
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


def _cached(spec: RuntimeSpec, key: str, store: Store) -> RuntimeResult | None:
    entry = store.lookup(RUNTIMES.name, key)
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
    build_host: str | None = None,
    cached_only: bool = False,
) -> RuntimeResult:
    """Build (or take from the cache) the CPython runtime of ``spec`` from ``source``.

    ``build_host`` is the arch of the machine the runtime is (or was) compiled on
    (default: this machine). A runtime of another build host can come from the cache
    (handed over by the job that built it) but is never compiled here; with
    ``cached_only`` nothing is compiled at all: a miss names the key and fails.

    The runtime's timestamps (``SOURCE_DATE_EPOCH`` of the compile, clamped mtimes of
    the tar) come from the source release (the newest member of the source tarball),
    not from ``epoch``: an image rebuilt with a new epoch (a base security update) must
    reuse the same runtime bytes, so ``epoch`` is not part of the key and is only
    noted in the record (``requested_epoch``).
    """
    here = host_arch()
    host = build_host or here
    key = runtime_key(spec, host)
    if not force:
        hit = _cached(spec, key, store)
        if hit is not None:
            return hit
    what = f"the CPython {spec.version} {spec.distro.ident} {spec.arch} {spec.profile} runtime"
    how = f"compiled on {host}" + (" (cross)" if spec.arch != host else " (native)")
    if cached_only:
        raise BuildError(
            f"{what} {how} (key {key}) is not in the cache {store.root}: it comes from the "
            "runtime job that builds it; refusing to compile a different build here"
        )
    if host != here:
        raise BuildError(
            f"{what} {how} (key {key}) is not in the cache, and this machine is {here}: "
            f"build it on a {host} machine and hand the cache entry over"
        )
    with store.lock(RUNTIMES.name, key):
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
            build_host=host,
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
    build_host: str,
) -> RuntimeResult:
    plan = plan_build(spec, build_host)
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
        with store.building(RUNTIMES.name, key) as entry:
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
    final = store.path(RUNTIMES.name, key)
    return RuntimeResult(
        spec=spec,
        key=key,
        tarball=final / "runtime.tar",
        record=read_json(final / "record.json"),
        cached=False,
    )


@dataclass(frozen=True)
class _Job:
    """One runtime build in progress: what every step of the recipe needs.

    ``work`` is bound at ``/build`` in the build root: the source in ``src``, the
    ``make install`` staging root in ``stage``, the build Python (cross builds) in
    ``buildpy``.
    """

    spec: RuntimeSpec
    plan: BuildPlan
    key: str
    root: Path
    work: Path
    log: Path
    subject: str
    jobs: int
    epoch: int  # the source release time: the compile's SOURCE_DATE_EPOCH
    ro_binds: tuple[tuple[Path, str], ...]

    @property
    def stage(self) -> Path:
        return self.work / "stage"

    @property
    def local(self) -> Path:
        """The installed ``/usr/local`` tree in the staging root."""
        return self.stage / PREFIX.lstrip("/")

    @property
    def target_gnu(self) -> str:
        return ARCHES[self.spec.arch].gnu

    def inside(
        self,
        argv: list[str],
        what: str,
        *,
        env: dict[str, str] | None = None,
        logged: bool = True,
    ) -> str:
        """Run ``argv`` in the build root, in the source tree, at the source's epoch."""
        return run_in_root(
            self.root,
            argv,
            work=self.work,
            what=what,
            log=self.log if logged else None,
            env={"SOURCE_DATE_EPOCH": str(self.epoch), **(env or {})},
            ro_binds=self.ro_binds,
            cwd="/build/src",
        )


@dataclass(frozen=True)
class _Compiler:
    """What ``configure`` settled: the compiler and the make variables of every make."""

    version: str  # first line of ``cc --version``
    make_vars: tuple[str, ...]


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
    """The recipe, one named step after another; returns the record."""
    ro_binds = _extract_build_python(spec, work, build_python)
    epoch = _extract_source(source, work / "src")
    (work / "stage").mkdir()
    job = _Job(spec, plan, key, root, work, log, subject, jobs, epoch, ro_binds)
    with progress.step("configure", subject) as step, step.follow(log, CPythonOutput(step)):
        compiler = _configure(job)
    with progress.step("make", subject) as step:
        total = None if progress.quiet else count_compiles(_dry_run(job, compiler))
        with step.follow(log, CPythonOutput(step, total=total)):
            _make(job, compiler)
    with progress.step("install", subject) as step, step.follow(log, CPythonOutput(step)):
        _install(job, compiler)
    with progress.step("package", subject):
        _check_install_prefix(job)
        clean_tree(job.local)
        remove_unshipped(job.local, spec.minor())
        elves = _read_elves(job, _strip(job))
        make_links(job.local / "bin")
        check_pip(job.local, spec.minor())
        python = job.local / "bin" / f"python{spec.minor()}"
        check_static_interpreter(job.local, spec.minor(), elves[python].needed, log)
        check_runpaths(elves, job.local, log)
        bytecode = _compile_bytecode(job)
        extensions = extension_modules(job.local, spec.minor())
        native = build_python.record.get("extension_modules", []) if build_python else []
        check_extensions(extensions, native, subject)
        lib_packages = _linked_packages(job, elves)
        sha, size = write_tree_tar_file(job.stage, entry / "runtime.tar", epoch=epoch)
    return _record(
        job,
        compiler,
        build_python=build_python,
        extensions=extensions,
        lib_packages=lib_packages,
        bytecode=bytecode,
        sha=sha,
        size=size,
    )


def _compile_bytecode(job: _Job) -> dict[str, Any]:
    """The stdlib's bytecode, compiled by the runtime's own interpreter, or by the build
    Python (the same version: the same bytecode) when the built one cannot run here."""
    minor = job.spec.minor()
    python = (
        f"{PREFIX}/bin/python{minor}"
        if job.plan.cross
        else f"/build/stage{PREFIX}/bin/python{minor}"
    )

    def run(argv: list[str]) -> None:
        job.inside(argv, f"compileall ({job.subject})", env={"PYTHONHASHSEED": "0"})

    return compile_bytecode(job.local, minor, job.epoch, run, python=python)


def _extract_build_python(
    spec: RuntimeSpec, work: Path, build_python: RuntimeResult | None
) -> tuple[tuple[Path, str], ...]:
    """Cross builds: unpack the build Python (without its pip) to mount at ``/usr/local``."""
    if build_python is None:
        return ()
    buildpy = work / "buildpy"
    buildpy.mkdir()
    with tarfile.open(build_python.tarball) as tar:
        tar.extractall(buildpy, filter="tar")
    # without its site-packages: ensurepip (run by `make install` with the build Python)
    # would find pip already installed and put nothing into the staging root; and the
    # target's interpreter running the PGO profile task under qemu has the same prefix,
    # so an existing /usr/local/.../site-packages (read-only here) would be on its
    # sys.path, where test_pickle's clean-up gets EROFS, not ENOENT, and fails the build
    site = buildpy / PREFIX.lstrip("/") / "lib" / f"python{spec.minor()}" / "site-packages"
    shutil.rmtree(site, ignore_errors=True)
    (work / "config.site").write_text(CROSS_CONFIG_SITE)
    return ((buildpy / PREFIX.lstrip("/"), PREFIX),)


def _extract_source(source: Path, src: Path) -> int:
    """Unpack the source tarball (without its top directory) into ``src``.

    Returns the release time of the source (its newest member): the runtime's
    SOURCE_DATE_EPOCH.
    """
    src.mkdir()
    with tarfile.open(source) as tar:
        members = [m for m in tar.getmembers() if "/" in m.name]
        for member in members:
            member.name = member.name.split("/", 1)[1]
        tar.extractall(src, members=members, filter="tar")
    return max(int(m.mtime) for m in members)


def _configure(job: _Job) -> _Compiler:
    """dpkg-buildflags plus the plan's flags (checked against the compiler), ./configure."""
    plan = job.plan
    dpkg_arch = ["dpkg-architecture", f"-a{job.spec.arch}", "-c", "dpkg-buildflags", "--get"]

    def buildflags(name: str) -> list[str]:
        return job.inside([*dpkg_arch, name], "dpkg-buildflags", logged=False).split()

    cflags = without_opt_level(buildflags("CFLAGS"))
    ldflags = buildflags("LDFLAGS")
    # -D_FORTIFY_SOURCE=2 (glibc's checked memcpy, snprintf and the like) and -Wdate-time,
    # as Debian builds its own python3.X; on CPython's own compile lines only
    # (PY_CPPFLAGS), not in sysconfig's CFLAGS for users' extensions
    cppflags = buildflags("CPPFLAGS")
    cc = f"{job.target_gnu}-gcc"
    own_flags = [*plan.extra_cflags, *plan.eval_loop_cflags]
    if own_flags:
        check = [cc, "-Werror", *own_flags, "-x", "c", "-c", "/dev/null"]
        job.inside(
            [*check, "-o", "/tmp/flags-check.o"],
            f"{cc} accepting {' '.join(own_flags)}",
        )
    version = job.inside([cc, "--version"], f"{cc} --version", logged=False).splitlines()[0]
    make_vars = (
        f"EXTRA_CFLAGS={' '.join([*cflags, *plan.extra_cflags])}",
        f"LDFLAGS={' '.join(ldflags)}",
        *([f"CPPFLAGS={' '.join(cppflags)}"] if cppflags else []),
        *plan.make_vars,
    )
    job.inside(
        ["./configure", *plan.configure_args],
        f"configure ({job.subject})",
        env=dict(plan.configure_env),
    )
    makefile = job.work / "src" / "Makefile"
    edited = (
        build_all_edited(makefile.read_text())
        + eval_loop_rule(plan.eval_loop_cflags)
        + STABLE_ABI_RUNPATH_RULE
    )
    makefile.write_text(edited)
    return _Compiler(version, make_vars)


def _dry_run(job: _Job, compiler: _Compiler) -> str:
    """``make -n``: the commands make would run, so progress can count the objects."""
    return job.inside(
        ["sh", "-c", 'make -n "$@" 2>/dev/null || true', "sh", *compiler.make_vars],
        "make -n",
        logged=False,
    )


def _make(job: _Job, compiler: _Compiler) -> None:
    """``make``; every stdlib extension module the images need must have been built."""
    job.inside(
        ["make", f"-j{job.jobs}", *compiler.make_vars],
        f"make ({job.subject})",
        env=dict(job.plan.make_env),
    )
    summary = parse_module_summary(job.log.read_text(errors="replace"))
    check_module_summary(summary, job.subject, job.log)


def _install(job: _Job, compiler: _Compiler) -> None:
    """``make install`` into the staging root (ensurepip included)."""
    job.inside(
        ["make", "install", "DESTDIR=/build/stage", *compiler.make_vars],
        f"make install ({job.subject})",
    )


def _check_install_prefix(job: _Job) -> None:
    """``make install`` wrote nothing outside ``/usr/local``."""
    tops = sorted(p.name for p in job.stage.iterdir())
    if tops != ["usr"] or sorted(p.name for p in (job.stage / "usr").iterdir()) != ["local"]:
        raise BuildError(f"make install wrote outside {PREFIX} ({tops}); full log: {job.log}")


def _strip(job: _Job) -> list[Path]:
    """Strip every ELF file of the installed tree; returns them (sorted)."""
    elves = sorted(p for p in job.local.rglob("*") if is_elf(p))
    job.inside(
        [
            f"{job.target_gnu}-strip",
            "--strip-unneeded",
            *(f"/build/{p.relative_to(job.work)}" for p in elves),
        ],
        f"strip ({job.subject})",
    )
    return elves


def _read_elves(job: _Job, elves: list[Path]) -> dict[Path, ElfInfo]:
    """Every stripped ELF file, read; each must be built for the runtime's architecture."""
    infos: dict[Path, ElfInfo] = {}
    for path in elves:
        try:
            infos[path] = read_elf_of_arch(path, job.spec.arch)
        except ElfError as exc:
            raise BuildError(f"{path.relative_to(job.stage)} {exc}; full log: {job.log}") from exc
    return infos


def _linked_packages(job: _Job, elves: dict[Path, ElfInfo]) -> dict[str, str]:
    """The packages of the shared libraries the runtime links (all in runtime_packages)."""
    needed = {soname for info in elves.values() for soname in info.needed}
    own = {p.name for p in elves}
    lib_packages = packages_of(sorted(needed - own), job.spec.arch, job.inside)
    check_packages(lib_packages, job.spec.distro, job.subject)
    return lib_packages


def _record(
    job: _Job,
    compiler: _Compiler,
    *,
    build_python: RuntimeResult | None,
    extensions: set[str],
    lib_packages: dict[str, str],
    bytecode: dict[str, Any],
    sha: str,
    size: int,
) -> dict[str, Any]:
    """``record.json``: what was built, how, and what it links."""
    spec, plan = job.spec, job.plan
    return {
        "recipe": RECIPE_VERSION,
        "key": job.key,
        "version": spec.version,
        "source_sha256": spec.source_sha256,
        "os": spec.distro.os,
        "release": spec.distro.release,
        "arch": spec.arch,
        "build_host_arch": plan.host_arch,
        "cross_compiled": plan.cross,
        "elf_machine": ARCHES[spec.arch].elf_name,
        "profile": spec.profile,
        "pgo": plan.pgo,
        "lto": plan.lto,
        "configure_args": list(plan.configure_args),
        "configure_env": dict(plan.configure_env),
        "make_vars": list(compiler.make_vars),
        "compiler": compiler.version,
        "build_python": build_python.key if build_python else None,
        "source_epoch": job.epoch,
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
