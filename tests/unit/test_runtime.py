"""Unit tests of the runtime stage: plans, keys, module checks, ELF reading, cleanup."""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bink_python.errors import BuildError, FetchError, UsageError
from bink_python.host.distro import get_distro
from bink_python.runtime import contents as runtime_contents
from bink_python.runtime import plan as runtime_plan
from bink_python.runtime.build import BuildMode, build_runtime
from bink_python.runtime.buildroot import BuildRootSpec, buildroot_key
from bink_python.runtime.elf import ElfInfo, read_elf_file
from bink_python.runtime.plan import plan_build, runtime_key
from bink_python.runtime.spec import RuntimeSpec
from bink_python.settings import Mirrors
from bink_python.store.store import Store, write_json
from tests.support.tools import requires_tool

SHA = "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76"
DEBIAN13 = get_distro("debian", "13")


def spec(**kw: object) -> RuntimeSpec:
    base = RuntimeSpec("3.13.15", SHA, DEBIAN13, "amd64", "release")
    return replace(base, **kw)  # type: ignore[arg-type]


def test_release_native_plan_has_reference_flags() -> None:
    plan = plan_build(spec(), build_host="amd64")
    assert not plan.cross
    assert plan.pgo and plan.lto
    for flag in (
        "--enable-optimizations",
        "--with-lto",
        "--enable-shared",
        "--enable-loadable-sqlite-extensions",
        "--enable-option-checking=fatal",
        "--with-ensurepip",
        "--with-system-expat",
        "--build=x86_64-linux-gnu",
        "--without-static-libpython",
        "--disable-test-modules",
    ):
        assert flag in plan.configure_args
    assert plan.extra_cflags == ("-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
    # no library search path for every link (STABLE_ABI_RUNPATH_RULE sets libpython3.so's)
    assert not [v for v in (*plan.make_vars, *plan.configure_args) if "rpath" in v]
    # the interpreter core is linked into python3.13 from libpython's own objects
    assert "BLDLIBRARY=$(LIBRARY_OBJS)" in plan.make_vars
    assert plan.make_env == ()


def test_release_cross_plan_has_pgo_with_the_profile_run_under_qemu() -> None:
    plan = plan_build(spec(arch="arm64"), build_host="amd64")
    assert plan.cross and plan.lto and plan.pgo
    assert not plan.bolt
    assert "--host=aarch64-linux-gnu" in plan.configure_args
    assert "--with-build-python=/usr/local/bin/python3.13" in plan.configure_args
    assert "--enable-optimizations" in plan.configure_args
    assert "--enable-bolt" not in plan.configure_args
    assert dict(plan.make_env) == {"QEMU_CPU": "cortex-a72"}
    env = dict(plan.configure_env)
    assert env["PKG_CONFIG_LIBDIR"].startswith("/usr/lib/aarch64-linux-gnu/pkgconfig")
    assert env["CONFIG_SITE"] == "/build/config.site"
    off = plan_build(spec(arch="arm64", pgo=False), build_host="amd64")
    assert not off.pgo and off.make_env == ()


def test_static_core_link_per_version() -> None:
    for version in ("3.9.25", "3.10.22", "3.11.17", "3.12.15", "3.13.15", "3.14.8"):
        plan = plan_build(spec(version=version), build_host="amd64")
        assert "BLDLIBRARY=$(LIBRARY_OBJS)" in plan.make_vars, version
        # the interpreter waits for the objects it links, not for libpython3.X.so (3.9's
        # Makefile has no LINK_PYTHON_DEPS: its interpreter waits for both libraries)
        linked = "LINK_PYTHON_DEPS=$(LIBRARY_OBJS)" in plan.make_vars
        assert linked == (version != "3.9.25"), version
        assert "--enable-static-libpython-for-interpreter" not in plan.configure_args
    plan = plan_build(spec(version="3.15.0"), build_host="amd64")
    assert "--enable-static-libpython-for-interpreter" in plan.configure_args
    # 3.15 links libpython3.15.a, so its LINK_PYTHON_DEPS (the archive) must stay
    assert not [v for v in plan.make_vars if v.startswith(("BLDLIBRARY=", "LINK_PYTHON_DEPS="))]
    # 3.9's configure has neither option (and --enable-option-checking=fatal)
    old = plan_build(spec(version="3.9.25"), build_host="amd64").configure_args
    assert "--without-static-libpython" not in old
    assert "--disable-test-modules" not in old


#: build_all as CPython 3.13's and 3.11's Makefile.pre.in spell it, with a neighbour rule
BUILD_ALL_313 = (
    ".PHONY: build_all\n"
    "build_all:\tcheck-clean-src check-app-store-compliance $(BUILDPYTHON) platform sharedmods \\\n"
    "\t\tgdbhooks Programs/_testembed scripts checksharedmods rundsymutil\n"
    "\n"
    "Programs/_testembed: Programs/_testembed.o $(LINK_PYTHON_DEPS)\n"
    "\t$(LINKCC) -o $@ Programs/_testembed.o $(LINK_PYTHON_OBJS)\n"
    "regen-stdlib-module-names: all Programs/_testembed\n"
)
BUILD_ALL_311 = (
    "build_all:\tcheck-clean-src $(BUILDPYTHON) platform oldsharedmods sharedmods \\\n"
    "\t\tgdbhooks Programs/_testembed python-config\n"
)


def test_build_all_links_the_library_and_not_testembed() -> None:
    out = runtime_plan.build_all_edited(BUILD_ALL_313)
    lines = out.split("\n")
    assert lines[1] == (
        "build_all:\tcheck-clean-src check-app-store-compliance $(BUILDPYTHON) $(LIBRARY_DEPS) "
        "platform sharedmods \\"
    )
    assert lines[2] == "\t\tgdbhooks scripts checksharedmods rundsymutil"
    # only build_all changed: _testembed's own rule and other users of it stay
    assert lines[3:] == BUILD_ALL_313.split("\n")[3:]
    assert runtime_plan.build_all_edited(out) == out  # idempotent
    old = runtime_plan.build_all_edited(BUILD_ALL_311)
    assert old == (
        "build_all:\tcheck-clean-src $(BUILDPYTHON) $(LIBRARY_DEPS) platform oldsharedmods "
        "sharedmods \\\n\t\tgdbhooks python-config\n"
    )


def test_build_all_edit_refuses_a_makefile_it_does_not_know() -> None:
    with pytest.raises(BuildError, match="no build_all rule"):
        runtime_plan.build_all_edited("all: python\n")
    with pytest.raises(BuildError, match="no \\$\\(BUILDPYTHON\\)"):
        runtime_plan.build_all_edited("build_all: python sharedmods\n")


def test_bolt_only_when_asked_and_where_the_build_root_has_it() -> None:
    assert not plan_build(spec(), build_host="amd64").bolt  # off by default
    plan = plan_build(spec(bolt=True), build_host="amd64")
    assert plan.bolt
    assert "--enable-bolt" in plan.configure_args
    assert "LLVM_BOLT=/usr/lib/llvm-19/bin/llvm-bolt" in plan.configure_args
    assert "BOLT_BINARIES=$(BUILDPYTHON)" in plan.make_vars
    ubuntu = get_distro("ubuntu", "22.04")
    assert not ubuntu.bolt_tools
    for other in (
        spec(distro=ubuntu, version="3.12.15", bolt=True),
        spec(version="3.11.17", bolt=True),
        spec(pgo=False, bolt=True),
        spec(arch="arm64", bolt=True),
    ):
        plan = plan_build(other, build_host="amd64")
        assert not plan.bolt and "--enable-bolt" not in plan.configure_args, other
    with pytest.raises(UsageError, match="fast profile"):
        plan_build(spec(profile="fast", bolt=True), build_host="amd64")


def test_native_arm64_host_builds_arm64_natively_with_pgo() -> None:
    plan = plan_build(spec(arch="arm64"), build_host="arm64")
    assert not plan.cross and plan.pgo
    assert "--build=aarch64-linux-gnu" in plan.configure_args


def test_fast_profile_has_no_pgo_or_lto() -> None:
    plan = plan_build(spec(profile="fast"), build_host="amd64")
    assert not plan.pgo and not plan.lto
    assert "--with-lto" not in plan.configure_args
    assert "--enable-optimizations" not in plan.configure_args
    with pytest.raises(UsageError, match="fast profile"):
        plan_build(spec(profile="fast", pgo=True), build_host="amd64")


def test_dpkg_optimisation_level_is_dropped_and_hardening_kept() -> None:
    dpkg = [
        "-g",
        "-O2",
        "-Werror=implicit-function-declaration",
        "-ffile-prefix-map=/build/src=.",
        "-fstack-protector-strong",
        "-fstack-clash-protection",
        "-Wformat",
        "-fcf-protection",
    ]
    kept = runtime_plan.without_opt_level(dpkg)
    assert kept == [f for f in dpkg if f != "-O2"]
    for level in ("-O", "-O0", "-O3", "-Os", "-Og", "-Oz", "-Ofast"):
        assert runtime_plan.without_opt_level(["-g", level]) == ["-g"]
    assert runtime_plan.without_opt_level(["-Ofoo", "-Wl,-O1"]) == ["-Ofoo", "-Wl,-O1"]


def test_removed_modules_commands_and_test_extensions(tmp_path: Path) -> None:
    local = tmp_path / "usr" / "local"
    lib = local / "lib" / "python3.13"
    for rel in (
        "lib/python3.13/idlelib/__init__.py",
        "lib/python3.13/tkinter/__init__.py",
        "lib/python3.13/turtledemo/__main__.py",
        "lib/python3.13/turtle.py",
        "lib/python3.13/json/__init__.py",
        "lib/python3.13/lib-dynload/_testcapi.cpython-313-x86_64-linux-gnu.so",
        "lib/python3.13/lib-dynload/xxlimited_35.cpython-313-x86_64-linux-gnu.so",
        "lib/python3.13/lib-dynload/_ctypes_test.cpython-313-x86_64-linux-gnu.so",
        "lib/python3.13/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so",
        "bin/idle3.13",
        "bin/python3.13",
    ):
        path = local / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (local / "bin" / "idle3").symlink_to("idle3.13")
    runtime_contents.remove_unshipped(local, "3.13")
    left = sorted(str(p.relative_to(local)) for p in local.rglob("*"))
    assert left == [
        "bin",
        "bin/python3.13",
        "lib",
        "lib/python3.13",
        "lib/python3.13/json",
        "lib/python3.13/json/__init__.py",
        "lib/python3.13/lib-dynload",
        "lib/python3.13/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so",
    ]
    assert lib.is_dir()
    assert "_tkinter" in runtime_contents.REMOVED_STDLIB_MODULES
    assert set(runtime_contents.REMOVED_STDLIB_MODULES) >= runtime_contents.EXTENSIONS_NOT_BUILT


def test_interpreter_gets_plain_stack_protector_and_user_extensions_keep_strong() -> None:
    for version in ("3.9.25", "3.13.15", "3.15.0"):
        for profile in ("release", "fast"):
            for arch in ("amd64", "arm64"):
                plan = plan_build(spec(version=version, profile=profile, arch=arch), "amd64")
                # CPython's own compile lines only: not in sysconfig's CFLAGS
                assert "CFLAGS_NODIST=-fstack-protector" in plan.make_vars
                assert not [f for f in plan.extra_cflags if f.startswith("-fstack-protector")]


def test_eval_loop_file_alone_gets_no_gcse_on_amd64() -> None:
    for version in ("3.9.25", "3.13.15", "3.15.0"):
        for profile in ("release", "fast"):
            for host in ("amd64", "arm64"):
                plan = plan_build(spec(version=version, profile=profile), host)
                assert plan.eval_loop_cflags == ("-fno-gcse",)
                assert "-fno-gcse" not in " ".join([*plan.extra_cflags, *plan.make_vars])
                # arm64's registers hold the loop's values: GCSE stays on
                assert not plan_build(
                    spec(version=version, profile=profile, arch="arm64"), host
                ).eval_loop_cflags
    assert runtime_plan.eval_loop_rule(()) == ""
    assert runtime_plan.eval_loop_rule(("-fno-gcse",)) == (
        "\nPython/ceval.o: PY_CFLAGS_NODIST += -fno-gcse\n"
    )


def test_the_eval_loop_flags_are_in_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    amd64, arm64 = runtime_key(spec(), "amd64"), runtime_key(spec(arch="arm64"), "amd64")
    monkeypatch.setitem(runtime_plan.EVAL_LOOP_CFLAGS, "amd64", ("-fno-gcse", "-fno-tree-pre"))
    # another flag on the loop's file is another runtime; arm64's build is untouched
    assert runtime_key(spec(), "amd64") != amd64
    assert runtime_key(spec(arch="arm64"), "amd64") == arm64


#: CPython's Makefile as far as the eval loop's compile line goes: its variables, the
#: suffix rule, and profile-opt's sub-make with CFLAGS_NODIST on its command line.
CEVAL_MAKEFILE = (
    "CC=cc\n"
    "CONFIGURE_CFLAGS_NODIST=-std=c11\n"
    "PY_CFLAGS_NODIST=$(CONFIGURE_CFLAGS_NODIST) $(CFLAGS_NODIST) -I$(srcdir)/Include/internal\n"
    "PY_STDMODULE_CFLAGS= $(PY_CFLAGS) $(PY_CFLAGS_NODIST) $(PY_CPPFLAGS) $(CFLAGSFORSHARED)\n"
    "PY_CORE_CFLAGS=\t$(PY_STDMODULE_CFLAGS) -DPy_BUILD_CORE\n"
    "srcdir=.\n"
    "profile-opt:\n"
    '\t$(MAKE) objs CFLAGS_NODIST="$(CFLAGS_NODIST) -fprofile-use"\n'
    "objs: Python/ceval.o Python/pystate.o\n"
    ".c.o:\n"
    "\techo $(CC) -c $(PY_CORE_CFLAGS) -o $@ $<\n"
)


def _make(directory: Path, *args: str) -> str:
    """What ``make -s`` in ``directory`` printed; make is a required host tool (tests/support/tools.py)."""
    make = requires_tool("make")
    return subprocess.run(
        [make, "-s", "--no-print-directory", "-C", str(directory), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_eval_loop_rule_reaches_its_compile_line_only_in_both_pgo_phases(
    tmp_path: Path,
) -> None:
    (tmp_path / "Python").mkdir()
    for name in ("ceval.c", "pystate.c"):
        (tmp_path / "Python" / name).write_text("int x;\n")
    makefile = tmp_path / "Makefile"
    makefile.write_text(
        CEVAL_MAKEFILE + runtime_plan.eval_loop_rule(runtime_plan.EVAL_LOOP_CFLAGS["amd64"])
    )

    def lines(*args: str) -> dict[str, str]:
        out = _make(tmp_path, *args)
        return {line.split()[-1]: line for line in out.splitlines() if line.startswith("cc ")}

    # the profile-use phase: the sub-make's command-line CFLAGS_NODIST does not drop it
    used = lines("profile-opt", "CFLAGS_NODIST=-fstack-protector")
    ceval = used["Python/ceval.c"].split()
    # after the build's own flags, so it wins over any -fgcse among them
    assert ceval.index("-fno-gcse") > ceval.index("-fprofile-use") > ceval.index("-std=c11")
    assert "-fno-gcse" not in used["Python/pystate.c"]
    assert "-fprofile-use" in used["Python/pystate.c"]
    # a plain build (the fast profile)
    plain = lines("objs", "CFLAGS_NODIST=-fstack-protector")
    assert "-fno-gcse" in plain["Python/ceval.c"]
    assert "-fno-gcse" not in plain["Python/pystate.c"]


#: CPython's Makefile as far as its links go: the variables, the libraries' rules (their
#: link lines as CPython's), profile-opt's sub-make with LDFLAGS_NODIST on its command line.
LINK_MAKEFILE = (
    "CC=cc\n"
    "PY_LDFLAGS=$(CONFIGURE_LDFLAGS) $(LDFLAGS)\n"
    "PY_LDFLAGS_NODIST=$(CONFIGURE_LDFLAGS_NODIST) $(LDFLAGS_NODIST)\n"
    "PY_CORE_LDFLAGS=$(PY_LDFLAGS) $(PY_LDFLAGS_NODIST)\n"
    "BLDSHARED=\t$(CC) -shared $(PY_CORE_LDFLAGS)\n"
    "NO_AS_NEEDED=\t-Wl,--no-as-needed\n"
    "LDVERSION=\t3.13\n"
    "INSTSONAME=\tlibpython$(LDVERSION).so.1.0\n"
    "profile-opt:\n"
    '\t$(MAKE) build_all LDFLAGS_NODIST="$(LDFLAGS_NODIST) -Wl,-O1"\n'
    "build_all: python3.13 libpython3.so _ssl.so\n"
    "python3.13:\n"
    "\t$(CC) $(PY_CORE_LDFLAGS) -o $@ main.c core.c\n"
    "libpython$(LDVERSION).so:\n"
    "\t$(BLDSHARED) -fPIC -Wl,-h$(INSTSONAME) -o $(INSTSONAME) core.c\n"
    "\tln -sf $(INSTSONAME) $@\n"
    "libpython3.so: libpython$(LDVERSION).so\n"
    "\t$(BLDSHARED) $(NO_AS_NEEDED) -o $@ -Wl,-h$@ $^\n"
    "_ssl.so:\n"
    "\t$(BLDSHARED) -fPIC -o $@ ext.c\n"
)


def test_only_libpython3_so_gets_a_runpath(tmp_path: Path) -> None:
    requires_tool("cc", "gcc")
    (tmp_path / "core.c").write_text("int core(void) { return 0; }\n")
    (tmp_path / "main.c").write_text("int core(void);\nint main(void) { return core(); }\n")
    (tmp_path / "ext.c").write_text("int ext(void) { return 1; }\n")
    (tmp_path / "Makefile").write_text(LINK_MAKEFILE + runtime_plan.STABLE_ABI_RUNPATH_RULE)
    # the release build's path: libpython3.13.so is linked as libpython3.so's prerequisite,
    # where a target-specific variable without `private` would reach it too
    _make(tmp_path, "profile-opt", "LDFLAGS=-Wl,-z,relro")

    def runpath(name: str) -> tuple[str, ...]:
        info = read_elf_file(tmp_path / name)
        assert info is not None and not info.rpath
        return info.runpath

    # $ORIGIN literally, through make's escape and the shell's quotes
    assert runpath("libpython3.so") == ("$ORIGIN",)
    for name in ("libpython3.13.so.1.0", "python3.13", "_ssl.so"):
        assert runpath(name) == (), name
    # and the library it is for is found through it, from anywhere
    out = subprocess.run(
        ["ldd", str(tmp_path / "libpython3.so")], capture_output=True, text=True, check=True
    ).stdout
    assert f"libpython3.13.so.1.0 => {tmp_path}/libpython3.13.so.1.0" in out, out


def test_runpath_check() -> None:
    local, log = Path("/stage/usr/local"), Path("/build.log")

    def elf(runpath: tuple[str, ...] = (), rpath: tuple[str, ...] = ()) -> ElfInfo:
        return ElfInfo(elf_class=2, machine=62, type=3, runpath=runpath, rpath=rpath)

    good = {
        local / "bin/python3.13": elf(),
        local / "lib/libpython3.13.so.1.0": elf(),
        local / "lib/libpython3.so": elf(("$ORIGIN",)),
        local / "lib/python3.13/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so": elf(),
    }
    runtime_contents.check_runpaths(good, local, log)
    ssl = local / "lib/python3.13/lib-dynload/_ssl.cpython-313-x86_64-linux-gnu.so"
    for path, info in (
        # recipe 9's LDFLAGS: every file searched $ORIGIN/../lib
        (ssl, elf(("$ORIGIN/../lib",))),
        (local / "bin/python3.13", elf(("$ORIGIN/../lib",))),
        # an RPATH is inherited by what a file loads: never
        (local / "lib/libpython3.13.so.1.0", elf(rpath=("$ORIGIN",))),
        # libpython3.so without its own: libpython3.13.so unfound in a distroless image
        (local / "lib/libpython3.so", elf()),
    ):
        with pytest.raises(BuildError, match=re.escape(path.relative_to(local).as_posix())):
            runtime_contents.check_runpaths({**good, path: info}, local, log)


def test_frame_pointers_only_from_312() -> None:
    assert plan_build(spec(version="3.11.17"), build_host="amd64").extra_cflags == ()
    assert plan_build(spec(version="3.12.15"), build_host="amd64").extra_cflags


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", "3.13", "bad CPython version"),
        ("arch", "riscv64", "unknown arch"),
        ("profile", "debug", "unknown runtime profile"),
        ("source_sha256", "abc", "bad source sha256"),
    ],
)
def test_bad_specs_are_usage_errors(field: str, value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        runtime_key(spec(**{field: value}), "amd64")


def test_key_is_stable_and_covers_every_input() -> None:
    key = runtime_key(spec(), "amd64")
    assert key == runtime_key(spec(), "amd64")
    variants = [
        spec(version="3.13.16"),
        spec(source_sha256="0" * 64),
        spec(arch="arm64"),
        spec(profile="fast"),
        spec(pgo=False),
        spec(bolt=True),
        spec(distro=get_distro("debian", "12")),
    ]
    keys = {runtime_key(v, "amd64") for v in variants}
    assert key not in keys
    assert len(keys) == len(variants)


def test_key_changes_with_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    key = runtime_key(spec(), "amd64")
    monkeypatch.setattr(runtime_plan, "RECIPE_VERSION", runtime_plan.RECIPE_VERSION + 1)
    assert runtime_key(spec(), "amd64") != key


def test_buildroot_has_cross_packages_for_other_arch() -> None:
    root = BuildRootSpec(DEBIAN13, "amd64")
    assert root.cross_arches == ("arm64",)
    assert "crossbuild-essential-arm64" in root.packages
    assert "libssl-dev:arm64" in root.packages
    assert "libssl-dev" in root.packages
    assert "dpkg-dev:arm64" not in root.packages
    assert buildroot_key(root) != buildroot_key(BuildRootSpec(DEBIAN13, "arm64"))


SUMMARY_313 = """\
checking for something... yes
The necessary bits to build these optional modules were not found:
_tkinter              _dbm
To find the necessary bits, look in configure.ac and config.log.

Failed to build these modules:
_ssl

Following modules built successfully but were removed because they could not be imported:
_ctypes

Checked 112 modules (31 built-in, 76 shared, 1 n/a on linux-x86_64, 3 disabled, 1 missing)
"""


def test_module_summary_parsed_and_checked(tmp_path: Path) -> None:
    summary = runtime_contents.parse_module_summary(SUMMARY_313)
    assert summary == {"missing": {"_tkinter", "_dbm"}, "failed": {"_ssl"}, "removed": {"_ctypes"}}
    with pytest.raises(BuildError, match=r"_ctypes \(removed\), _dbm \(missing\), _ssl \(failed\)"):
        runtime_contents.check_module_summary(summary, "CPython", tmp_path / "log")
    only_tk = runtime_contents.parse_module_summary(
        "The necessary bits to build these optional modules were not found:\n_tkinter\n\n"
    )
    runtime_contents.check_module_summary(only_tk, "CPython", tmp_path / "log")


def test_elf_reader_matches_readelf() -> None:
    target = Path("/bin/ls").resolve()  # a dynamically linked ELF on every Debian host
    info = read_elf_file(target)
    assert info is not None
    assert info.machine == {"x86_64": 62, "aarch64": 183}[os.uname().machine]
    readelf = subprocess.run(
        ["readelf", "-d", str(target)], capture_output=True, text=True, check=True
    ).stdout
    expected = [
        line.split("[", 1)[1].rstrip("]") for line in readelf.splitlines() if "(NEEDED)" in line
    ]
    assert expected
    assert list(info.needed) == expected


def test_elf_reader_on_cross_compiled_object(tmp_path: Path) -> None:
    gcc = requires_tool("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu")
    (tmp_path / "m.c").write_text("#include <math.h>\nint f(double x){return (int)sqrt(x);}\n")
    so = tmp_path / "libm_user.so"
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-o", str(so), str(tmp_path / "m.c"), "-lm"], check=True
    )
    info = read_elf_file(so)
    assert info is not None
    assert info.machine == 183
    assert info.machine_name == "AArch64"
    assert "libm.so.6" in info.needed


def test_clean_tree_removes_tests_bytecode_and_static_libs(tmp_path: Path) -> None:
    local = tmp_path / "usr" / "local"
    lib = local / "lib" / "python3.13"
    for rel in (
        "test/test_x.py",
        "unittest/test/x.py",
        "idlelib/idle_test/t.py",
        "site-packages/pkg/tests/t.py",
        "json/__pycache__/x.cpython-313.pyc",
        "json/__init__.py",
        "old.pyo",
        "config-3.13-x86_64-linux-gnu/libpython3.13.a",
        "testing/keep.py",
    ):
        path = lib / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    runtime_contents.clean_tree(local)
    left = sorted(str(p.relative_to(lib)) for p in lib.rglob("*") if p.is_file())
    assert left == ["json/__init__.py", "testing/keep.py"]
    assert not (lib / "json" / "__pycache__").exists()


def test_links_and_pip_check(tmp_path: Path) -> None:
    local = tmp_path / "usr" / "local"
    bindir = local / "bin"
    bindir.mkdir(parents=True)
    for name in runtime_contents.UNVERSIONED_LINKS:
        (bindir / name).write_text("#!/usr/local/bin/python3.13\n")
    runtime_contents.make_links(bindir)
    assert (bindir / "python").readlink() == Path("python3")
    assert (bindir / "pip").readlink() == Path("pip3")
    assert (bindir / "python-config").readlink() == Path("python3-config")
    runtime_contents.check_pip(local, spec().minor())
    (bindir / "pip3").write_text("#!/build/src/python\n")
    with pytest.raises(BuildError, match="pip3 starts with"):
        runtime_contents.check_pip(local, spec().minor())
    (bindir / "pip3").unlink()
    with pytest.raises(BuildError, match="pip3 is missing"):
        runtime_contents.check_pip(local, spec().minor())


def test_needed_packages_must_be_runtime_packages() -> None:
    runtime_contents.check_packages(
        {"libssl.so.3": "libssl3t64", "libc.so.6": "libc6"}, DEBIAN13, "x"
    )
    with pytest.raises(BuildError, match=r"libtk8.6 \(libtk8.6.so\)"):
        runtime_contents.check_packages({"libtk8.6.so": "libtk8.6"}, DEBIAN13, "x")


def test_cache_hit_is_quick_and_does_not_read_the_source(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    the_spec = spec(profile="fast")
    key = runtime_key(the_spec, "amd64")
    with store.building("runtimes", key) as entry:
        (entry / "runtime.tar").write_bytes(b"tar")
        write_json(entry / "record.json", {"version": "3.13.15"})
    start = time.monotonic()
    result = build_runtime(the_spec, tmp_path / "absent.tar.xz", store, epoch=0, mirrors=Mirrors())
    assert time.monotonic() - start < 1
    assert result.cached and result.key == key
    assert result.record == {"version": "3.13.15"}


def test_wrong_source_checksum_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "Python-3.13.15.tar.xz"
    source.write_bytes(b"not python")
    with pytest.raises(FetchError, match="expected 1e66a794"):
        build_runtime(
            spec(profile="fast"), source, Store(tmp_path / "c"), epoch=0, mirrors=Mirrors()
        )
    assert not (tmp_path / "c" / "runtimes").exists() or not any(
        p for p in (tmp_path / "c" / "runtimes").iterdir() if not p.name.startswith(".")
    )


DPKG_S = """\
diversion by libreadline8t64 from: /lib/x86_64-linux-gnu/libreadline.so.8
diversion by libreadline8t64 to: /lib/x86_64-linux-gnu/libreadline.so.8.usr-is-merged
libreadline8t64:amd64: /usr/lib/x86_64-linux-gnu/libreadline.so.8
libssl3t64:amd64: /usr/lib/x86_64-linux-gnu/libssl.so.3
libssl3t64:arm64: /usr/lib/aarch64-linux-gnu/libssl.so.3
libc6:amd64: /usr/lib/x86_64-linux-gnu/libc.so.6
"""


def test_dpkg_search_parsed_per_arch_ignoring_diversions() -> None:
    names = ["libreadline.so.8", "libssl.so.3", "libc.so.6"]
    assert runtime_contents.parse_dpkg_search(DPKG_S, names, "amd64") == {
        "libc.so.6": "libc6",
        "libreadline.so.8": "libreadline8t64",
        "libssl.so.3": "libssl3t64",
    }
    assert runtime_contents.parse_dpkg_search(DPKG_S, names, "arm64") == {
        "libssl.so.3": "libssl3t64"
    }


def test_key_takes_the_build_host_as_an_input_not_from_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key of a runtime is the same whichever machine computes
    it; a native arm64 build and an arm64 build cross-compiled on amd64 differ."""
    keys = {}
    for machine in ("x86_64", "aarch64"):
        monkeypatch.setattr(platform, "machine", lambda m=machine: m)
        arm64 = spec(arch="arm64")
        keys[machine] = (runtime_key(arm64, "arm64"), runtime_key(arm64, "amd64"))
    assert keys["x86_64"] == keys["aarch64"]
    native, cross = keys["x86_64"]
    assert native != cross
    assert plan_build(spec(arch="arm64"), "arm64").pgo  # native release: PGO
    cross_plan = plan_build(spec(arch="arm64"), "amd64")
    assert cross_plan.pgo and cross_plan.cross  # cross: PGO too, profiled under qemu-user
    with pytest.raises(UsageError, match="unknown arch"):
        runtime_key(spec(), "riscv64")


def test_a_runtime_of_another_build_host_is_taken_from_the_cache_never_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    store = Store(tmp_path / "cache")
    native_arm64 = spec(arch="arm64", profile="fast")
    absent = tmp_path / "absent.tar.xz"
    with pytest.raises(BuildError, match=r"compiled on arm64 \(native\) .* this machine is amd64"):
        build_runtime(native_arm64, absent, store, epoch=0, build_host="arm64", mirrors=Mirrors())
    with pytest.raises(BuildError, match=r"compiled on amd64 \(cross\) .* refusing to compile"):
        build_runtime(
            native_arm64, absent, store, epoch=0, mode=BuildMode.CACHED_ONLY, mirrors=Mirrors()
        )
    # the entry the arm64 runtime job saved, handed over by key
    key = runtime_key(native_arm64, "arm64")
    with store.building("runtimes", key) as entry:
        (entry / "runtime.tar").write_bytes(b"tar")
        write_json(entry / "record.json", {"build_host_arch": "arm64"})
    hit = build_runtime(
        native_arm64,
        absent,
        store,
        epoch=0,
        build_host="arm64",
        mode=BuildMode.CACHED_ONLY,
        mirrors=Mirrors(),
    )
    assert hit.cached and hit.key == key


def _compile_tree(tmp_path: Path, name: str) -> Path:
    """A staged tree with a small stdlib, compiled by compile_bytecode with this Python."""
    stage = tmp_path / name
    lib = stage / "usr" / "local" / "lib" / "python3.13"
    for rel, text in (
        ("json/__init__.py", "KEYS = {'a', 'b', 'c', 'd'}\ndef f(x):\n    return x in KEYS\n"),
        ("abc.py", "X = frozenset({'x', 'y'})\n"),
        ("site-packages/pip/__init__.py", "Y = 1\n"),
    ):
        path = lib / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def run(argv: list[str]) -> None:
        argv = [a.replace("/build/stage", str(stage)) for a in argv]
        subprocess.run(argv, check=True, env={**os.environ, "PYTHONHASHSEED": "0"})

    record = runtime_contents.compile_bytecode(
        stage / "usr" / "local", "3.13", 1700000000, run, python=sys.executable
    )
    assert record["invalidation"] == "timestamp"
    assert record["files"] == 2
    return lib


def test_stdlib_bytecode_is_compiled_reproducibly_with_clamped_mtimes(tmp_path: Path) -> None:
    first = _compile_tree(tmp_path, "one")
    time.sleep(1.1)
    second = _compile_tree(tmp_path, "two")
    tag = sys.implementation.cache_tag
    pyc = first / "json" / "__pycache__" / f"__init__.{tag}.pyc"
    data = pyc.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0  # flags: timestamp-based
    # the source mtime recorded is the clamped one the tar writer gives the source too
    assert int.from_bytes(data[8:12], "little") == 1700000000
    assert (first / "json" / "__init__.py").stat().st_mtime == 1700000000
    assert not list((first / "site-packages").rglob("*.pyc"))
    assert not list(first.rglob("*.opt-*.pyc"))
    for path in first.rglob("*.pyc"):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes()


def _needed(path: Path) -> tuple[str, ...]:
    info = read_elf_file(path)
    assert info is not None
    return info.needed


def test_static_interpreter_check(tmp_path: Path) -> None:
    gcc = requires_tool("gcc")
    local = tmp_path / "usr" / "local"
    (local / "bin").mkdir(parents=True)
    (local / "lib").mkdir()
    (tmp_path / "core.c").write_text("int core(void) { return 0; }\n")
    (tmp_path / "main.c").write_text("int core(void);\nint main(void) { return core(); }\n")
    so = local / "lib" / "libpython3.13.so.1.0"
    subprocess.run(
        [
            gcc,
            "-shared",
            "-fPIC",
            "-Wl,-soname,libpython3.13.so.1.0",
            "-o",
            so,
            tmp_path / "core.c",
        ],
        check=True,
    )
    (local / "lib" / "libpython3.13.so").symlink_to(so.name)
    python = local / "bin" / "python3.13"
    log = tmp_path / "build.log"
    # linked the way --enable-shared links it: refused
    subprocess.run(
        [gcc, "-o", python, tmp_path / "main.c", f"-L{local / 'lib'}", "-lpython3.13"], check=True
    )
    with pytest.raises(BuildError, match=re.escape("links libpython3.13.so.1.0")):
        runtime_contents.check_static_interpreter(local, "3.13", _needed(python), log)
    # the core in the executable: accepted, while the shared library ships
    subprocess.run([gcc, "-o", python, tmp_path / "main.c", tmp_path / "core.c"], check=True)
    runtime_contents.check_static_interpreter(local, "3.13", _needed(python), log)
    for path in (local / "lib").iterdir():
        path.unlink()
    with pytest.raises(BuildError, match=re.escape("libpython3.13.so was not installed")):
        runtime_contents.check_static_interpreter(local, "3.13", _needed(python), log)
