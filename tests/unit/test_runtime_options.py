"""Every planned build uses only the configure options, Makefile variables, stdlib modules and
packages its CPython version has (runtime/options.py, from each version's documentation)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest

from bink_python.family.config import load_family
from bink_python.host.arch import ARCHES
from bink_python.host.distro import Distro, get_distro
from bink_python.runtime import options
from bink_python.runtime import plan as runtime_plan
from bink_python.runtime.contents import REMOVED_STDLIB_MODULES, compile_bytecode
from bink_python.runtime.plan import plan_build
from bink_python.runtime.spec import RuntimeSpec

REPO = Path(__file__).resolve().parents[2]
CONFIGS = (REPO / "images.toml", REPO / "examples" / "offline" / "images.toml")
SHA = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
UBUNTU2204 = get_distro("ubuntu", "22.04")
DEBIAN13 = get_distro("debian", "13")


def _builds() -> list[tuple[str, Distro]]:
    """Each CPython version of the images.toml files, with its OS release."""
    found = {
        (tag.version, tag.distro)
        for path in CONFIGS
        for tag in load_family(path).tags
        if tag.python is not None
    }
    return sorted(found, key=lambda pair: (pair[0], pair[1].ident))


BUILDS = _builds()


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _specs(version: str, distro: Distro) -> list[tuple[RuntimeSpec, str]]:
    """Every spec of ``version`` the planner allows: arches, hosts, profiles, BOLT on and off."""
    out = []
    for arch, host, profile, bolt in itertools.product(
        ARCHES, ARCHES, ("release", "fast"), (False, True)
    ):
        if profile == "fast" and bolt:
            continue  # refused by RuntimeSpec.validate
        out.append((RuntimeSpec(version, SHA, distro, arch, profile, bolt=bolt), host))
    return out


def test_the_table_covers_every_version_of_the_images() -> None:
    assert BUILDS
    for version, _ in BUILDS:
        assert _minor(version) in options.MINORS
        assert _minor(version) in options.SOURCES


@pytest.mark.parametrize(("version", "distro"), BUILDS, ids=[f"{v}-{d.ident}" for v, d in BUILDS])
def test_every_plan_uses_only_what_its_version_has(version: str, distro: Distro) -> None:
    for spec, host in _specs(version, distro):
        plan = plan_build(spec, host)
        assert options.unknown_names(plan, _minor(version)) == [], (spec, host)


def test_cross_builds_before_311_find_the_build_python_on_path() -> None:
    """configure of 3.9 and 3.10 has no --with-build-python: it looks for python3.X on
    PATH, where the build Python is mounted (/usr/local/bin first in the build root)."""
    for version in ("3.9.25", "3.10.22"):
        spec = RuntimeSpec(version, SHA, UBUNTU2204, "arm64")
        plan = plan_build(spec, "amd64")
        assert plan.cross
        assert not [a for a in plan.configure_args if a.startswith("--with-build-python")]
    spec = RuntimeSpec("3.11.17", SHA, UBUNTU2204, "arm64")
    assert (
        "--with-build-python=/usr/local/bin/python3.11" in plan_build(spec, "amd64").configure_args
    )


def test_the_checker_names_an_option_and_the_version_that_lacks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = RuntimeSpec("3.11.17", SHA, UBUNTU2204, "amd64")
    plan = plan_build(spec, "amd64")
    assert options.unknown_names(plan, (3, 11)) == []
    # the planner giving 3.11 the 3.15-only option, as a wrong version gate would
    monkeypatch.setattr(runtime_plan, "_static_interpreter", _static_interpreter_always)
    wrong = options.unknown_names(plan_build(spec, "amd64"), (3, 11))
    assert wrong == [
        "configure option --enable-static-libpython-for-interpreter is not in CPython 3.11"
    ]
    # and a Makefile variable the version lacks
    bolted = replace(plan, make_vars=(*plan.make_vars, "BOLT_BINARIES=$(BUILDPYTHON)"))
    assert options.unknown_names(bolted, (3, 11)) == [
        "Makefile variable BOLT_BINARIES is not in CPython 3.11"
    ]
    # and an option nobody documented at all
    bogus = replace(plan, configure_args=(*plan.configure_args, "--with-frobnication"))
    assert options.unknown_names(bogus, (3, 13)) == [
        "configure option --with-frobnication is not in CPython 3.13"
    ]


def _static_interpreter_always(
    version: tuple[int, int, int], args: list[str], make_vars: list[str]
) -> None:
    args.append("--enable-static-libpython-for-interpreter")


def test_option_names_fold_without_and_disable() -> None:
    plan = plan_build(RuntimeSpec("3.13.16", SHA, DEBIAN13, "amd64"), "amd64")
    configure, variables = options.plan_names(plan)
    assert "--with-static-libpython" in configure  # --without-static-libpython
    assert "--enable-test-modules" in configure  # --disable-test-modules
    assert {"BLDLIBRARY", "LIBRARY_OBJS", "LINK_PYTHON_DEPS", "BLDSHARED"} <= variables
    assert "PY_CFLAGS_NODIST" in variables  # the eval loop's rule (amd64)


@pytest.mark.parametrize(("version", "distro"), BUILDS, ids=[f"{v}-{d.ident}" for v, d in BUILDS])
def test_every_removed_module_is_in_its_versions_stdlib(version: str, distro: Distro) -> None:
    assert options.missing_modules(REMOVED_STDLIB_MODULES, _minor(version)) == []


def test_a_module_a_version_lacks_is_named() -> None:
    assert options.missing_modules(["tkinter", "distutils"], (3, 13)) == ["distutils"]


@pytest.mark.parametrize(("version", "distro"), BUILDS, ids=[f"{v}-{d.ident}" for v, d in BUILDS])
def test_build_root_and_base_have_every_library_of_the_version(
    version: str, distro: Distro
) -> None:
    """3.14's _zstd among them: libzstd-dev in the build root, libzstd1 in the base."""
    for library in options.EXTENSION_LIBRARIES:
        if not library.since.has(_minor(version)):
            continue
        assert library.build_package in distro.build_packages, (library, distro.name)
        runtime = {library.runtime_package, library.runtime_package + "t64"}
        assert runtime & set(distro.runtime_packages), (library, distro.name)


def test_zstd_is_needed_from_314_only() -> None:
    zstd = next(lib for lib in options.EXTENSION_LIBRARIES if lib.module == "_zstd")
    assert not zstd.since.has((3, 13)) and zstd.since.has((3, 14))
    assert any(_minor(version) >= (3, 14) for version, _ in BUILDS)


def test_the_bytecode_step_uses_only_compileall_options_every_version_has(
    tmp_path: Path,
) -> None:
    calls: list[list[str]] = []
    for version, _ in BUILDS:
        minor = ".".join(version.split(".")[:2])
        compile_bytecode(tmp_path, minor, 0, calls.append, python=f"/usr/local/bin/python{minor}")
        assert options.unknown_compileall_options(calls[-1], _minor(version)) == [], version
    assert options.unknown_compileall_options(["-m", "compileall", "-j", "1"], (3, 4)) == ["-j"]
