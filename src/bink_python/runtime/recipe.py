"""The recipe: the named steps of one runtime build, each over the job, and its record.

CPython is built from the verified source tarball in a build root of the same OS
release (``buildroot.py``), installed under ``/usr/local`` into a staging directory,
cleaned like the reference images, stripped, checked and packaged as a deterministic
tar whose paths start with ``usr/local/``. A cross build mounts the build Python (the
host-arch runtime of the same version and profile) at ``/usr/local`` in the build root,
so ``ensurepip`` installs pip with the right prefix and shebangs. ``record.json`` says
what was built and how, and which shared libraries it links, mapped to the
distribution packages (all in the distro's ``runtime_packages``) that provide them.
"""

from __future__ import annotations

import datetime
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BuildError
from ..host.arch import ARCHES
from ..host.progress import Progress
from ..oci.tarball import is_elf, write_tree_tar_file
from .buildroot import run_in_root
from .contents import (
    PREFIX,
    REMOVED_STDLIB_MODULES,
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
from .cpythonlog import CPythonOutput, count_compiles
from .elf import ElfError, ElfInfo, read_elf_of_arch
from .plan import (
    CROSS_CONFIG_SITE,
    RECIPE_VERSION,
    STABLE_ABI_RUNPATH_RULE,
    BuildPlan,
    build_all_edited,
    eval_loop_rule,
    without_opt_level,
)
from .spec import RuntimeResult, RuntimeSpec


@dataclass(frozen=True)
class Job:
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
    build_python: RuntimeResult | None  # cross builds: the host-arch runtime
    progress: Progress

    @property
    def ro_binds(self) -> tuple[tuple[Path, str], ...]:
        """Cross builds: the unpacked build Python, mounted at ``/usr/local``."""
        if self.build_python is None:
            return ()
        return ((self.work / "buildpy" / PREFIX.lstrip("/"), PREFIX),)

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


def unpack(source: Path, work: Path, spec: RuntimeSpec, build_python: RuntimeResult | None) -> int:
    """The build Python (cross builds), the source and an empty staging root into ``work``.

    Returns the source's release time: the job's ``epoch``.
    """
    _extract_build_python(spec, work, build_python)
    epoch = _extract_source(source, work / "src")
    (work / "stage").mkdir()
    return epoch


def compile_and_package(job: Job, entry: Path) -> dict[str, Any]:
    """The recipe, one named step after another: ``runtime.tar`` in ``entry``; the record."""
    spec, progress, subject = job.spec, job.progress, job.subject
    with progress.step("configure", subject) as step, step.follow(job.log, CPythonOutput(step)):
        compiler = _configure(job)
    with progress.step("make", subject) as step:
        total = None if progress.quiet else count_compiles(_dry_run(job, compiler))
        with step.follow(job.log, CPythonOutput(step, total=total)):
            _make(job, compiler)
    with progress.step("install", subject) as step, step.follow(job.log, CPythonOutput(step)):
        _install(job, compiler)
    with progress.step("package", subject):
        _check_install_prefix(job)
        clean_tree(job.local)
        remove_unshipped(job.local, spec.minor())
        elves = _read_elves(job, _strip(job))
        make_links(job.local / "bin")
        check_pip(job.local, spec.minor())
        python = job.local / "bin" / f"python{spec.minor()}"
        check_static_interpreter(job.local, spec.minor(), elves[python].needed, job.log)
        check_runpaths(elves, job.local, job.log)
        bytecode = _compile_bytecode(job)
        extensions = extension_modules(job.local, spec.minor())
        build_python = job.build_python
        native = build_python.record.get("extension_modules", []) if build_python else []
        check_extensions(extensions, native, subject)
        lib_packages = _linked_packages(job, elves)
        sha, size = write_tree_tar_file(job.stage, entry / "runtime.tar", epoch=job.epoch)
    return _record(
        job,
        compiler,
        extensions=extensions,
        lib_packages=lib_packages,
        bytecode=bytecode,
        sha=sha,
        size=size,
    )


def _compile_bytecode(job: Job) -> dict[str, Any]:
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
) -> None:
    """Cross builds: unpack the build Python (without its pip) to mount at ``/usr/local``."""
    if build_python is None:
        return
    buildpy = work / "buildpy"
    buildpy.mkdir()
    with tarfile.open(build_python.tarball) as tar:
        tar.extractall(buildpy, filter="tar")
    # without its site-packages, where ensurepip would find pip and stage none, and the
    # PGO task under qemu (same prefix) would fail cleaning up on the read-only mount
    site = buildpy / PREFIX.lstrip("/") / "lib" / f"python{spec.minor()}" / "site-packages"
    shutil.rmtree(site, ignore_errors=True)
    (work / "config.site").write_text(CROSS_CONFIG_SITE)


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


def _configure(job: Job) -> _Compiler:
    """dpkg-buildflags plus the plan's flags (checked against the compiler), ./configure."""
    plan = job.plan
    dpkg_arch = ["dpkg-architecture", f"-a{job.spec.arch}", "-c", "dpkg-buildflags", "--get"]

    def buildflags(name: str) -> list[str]:
        return job.inside([*dpkg_arch, name], "dpkg-buildflags", logged=False).split()

    cflags = without_opt_level(buildflags("CFLAGS"))
    ldflags = buildflags("LDFLAGS")
    # -D_FORTIFY_SOURCE=2 and -Wdate-time as Debian's python3.X, on CPython's own compile
    # lines only (PY_CPPFLAGS), not in sysconfig's CFLAGS for users' extensions
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


def _dry_run(job: Job, compiler: _Compiler) -> str:
    """``make -n``: the commands make would run, so progress can count the objects."""
    return job.inside(
        ["sh", "-c", 'make -n "$@" 2>/dev/null || true', "sh", *compiler.make_vars],
        "make -n",
        logged=False,
    )


def _make(job: Job, compiler: _Compiler) -> None:
    """``make``; every stdlib extension module the images need must have been built."""
    job.inside(
        ["make", f"-j{job.jobs}", *compiler.make_vars],
        f"make ({job.subject})",
        env=dict(job.plan.make_env),
    )
    summary = parse_module_summary(job.log.read_text(errors="replace"))
    check_module_summary(summary, job.subject, job.log)


def _install(job: Job, compiler: _Compiler) -> None:
    """``make install`` into the staging root (ensurepip included)."""
    job.inside(
        ["make", "install", "DESTDIR=/build/stage", *compiler.make_vars],
        f"make install ({job.subject})",
    )


def _check_install_prefix(job: Job) -> None:
    """``make install`` wrote nothing outside ``/usr/local``."""
    tops = sorted(p.name for p in job.stage.iterdir())
    if tops != ["usr"] or sorted(p.name for p in (job.stage / "usr").iterdir()) != ["local"]:
        raise BuildError(f"make install wrote outside {PREFIX} ({tops}); full log: {job.log}")


def _strip(job: Job) -> list[Path]:
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


def _read_elves(job: Job, elves: list[Path]) -> dict[Path, ElfInfo]:
    """Every stripped ELF file, read; each must be built for the runtime's architecture."""
    infos: dict[Path, ElfInfo] = {}
    for path in elves:
        try:
            infos[path] = read_elf_of_arch(path, job.spec.arch)
        except ElfError as exc:
            raise BuildError(f"{path.relative_to(job.stage)} {exc}; full log: {job.log}") from exc
    return infos


def _linked_packages(job: Job, elves: dict[Path, ElfInfo]) -> dict[str, str]:
    """The packages of the shared libraries the runtime links (all in runtime_packages)."""
    needed = {soname for info in elves.values() for soname in info.needed}
    own = {p.name for p in elves}
    lib_packages = packages_of(sorted(needed - own), job.spec.arch, job.inside)
    check_packages(lib_packages, job.spec.distro, job.subject)
    return lib_packages


def _record(
    job: Job,
    compiler: _Compiler,
    *,
    extensions: set[str],
    lib_packages: dict[str, str],
    bytecode: dict[str, Any],
    sha: str,
    size: int,
) -> dict[str, Any]:
    """``record.json``: what was built, how, and what it links."""
    spec, plan, build_python = job.spec, job.plan, job.build_python
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
