"""CPython 3.13.15 fast runtimes for amd64 (native) and arm64 (cross-compiled), run in
a Debian 13 base of their architecture (arm64 through qemu-user binfmt)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.sandbox import bwrap_argv
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from bink_python.host.arch import ARCHES as ARCH_TABLE
from bink_python.host.arch import host_arch
from bink_python.host.binfmt import emulation_env, ensure_binfmt
from bink_python.host.distro import get_distro
from bink_python.runtime.build import build_runtime
from bink_python.runtime.buildroot import BuildRootSpec, ensure_buildroot
from bink_python.runtime.contents import REQUIRED_EXTENSIONS
from bink_python.runtime.elf import read_elf
from bink_python.store.store import Store
from tests.support.machine import machine_mirrors
from tests.support.runtimes import CPYTHON_VERSION, TEST_EPOCH, RuntimeFactory, sysconfig_vars

from .fixtures_base import BaseFactory

pytestmark = [
    pytest.mark.skipif(host_arch() != "amd64", reason="asserts an amd64 host cross-compiling"),
]

ARCHES = ("amd64", "arm64")
MODULES = (
    "ssl",
    "sqlite3",
    "ctypes",
    "lzma",
    "bz2",
    "zlib",
    "readline",
    "uuid",
    "decimal",
    "zoneinfo",
)
CHECK = (
    f"import sys, {', '.join(MODULES)}; "
    "ssl.create_default_context(); sqlite3.connect(':memory:').execute('select 1'); "
    "ctypes.CDLL(None); lzma.compress(b'x'); bz2.compress(b'x'); zlib.compress(b'x'); "
    "uuid.uuid4(); decimal.Decimal('1.1'); zoneinfo.ZoneInfo('Europe/London'); "
    # the base's loader cache predates the runtime: libpython3.13.so is found through
    # libpython3.so's RUNPATH, as in a distroless image (which has no cache)
    "ctypes.CDLL('/usr/local/lib/libpython3.so'); "
    "print(sys.version.split()[0], sys.implementation._multiarch)"
)


@pytest.mark.parametrize("arch", ARCHES)
def test_fast_runtime_tarball_and_record(runtime_factory: RuntimeFactory, arch: str) -> None:
    result = runtime_factory(arch)
    record = result.record
    assert record["version"] == CPYTHON_VERSION
    assert record["arch"] == arch
    assert record["cross_compiled"] is (arch == "arm64")
    assert record["elf_machine"] == {"amd64": "x86-64", "arm64": "AArch64"}[arch]
    if arch == "arm64":
        assert "--host=aarch64-linux-gnu" in record["configure_args"]
        assert record["compiler"].startswith("aarch64-linux-gnu-gcc")
    assert set(record["extension_modules"]) >= REQUIRED_EXTENSIONS
    runtime_packages = set(get_distro("debian", "13").runtime_packages) | {"libc6"}
    assert {"libssl3t64", "libsqlite3-0", "libffi8"} <= set(record["packages"])
    assert set(record["packages"]) <= runtime_packages
    assert (result.tarball.parent / "build.log").is_file()

    with tarfile.open(result.tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        stream = tar.extractfile("usr/local/bin/python3.13")
        assert stream is not None
        interpreter = stream.read()
        # every ELF file's library search paths, as the loader reads them
        search_paths = {}
        for member in tar.getmembers():
            stream = tar.extractfile(member) if member.isfile() else None
            data = stream.read() if stream is not None else b""
            if data[:4] == b"\x7fELF":
                info = read_elf(data)
                search_paths[member.name] = (info.runpath, info.rpath)
    names = set(members)
    assert all(n == "usr" or n == "usr/local" or n.startswith("usr/local/") for n in names)
    assert not [n for n in names if n.endswith(".pyo") or "libpython3.13.a" in n]
    # stdlib bytecode ships (compiled by the build Python when cross-compiling), pip's not
    assert "usr/local/lib/python3.13/json/__pycache__/__init__.cpython-313.pyc" in names
    assert not [n for n in names if n.endswith(".pyc") and "/site-packages/" in n]
    assert record["bytecode"]["files"] > 500
    assert not [
        n
        for n in names
        if n.rsplit("/", 1)[-1] in {"test", "tests", "idle_test"} and members[n].isdir()
    ]
    for link, target in (
        ("python", "python3"),
        ("pip", "pip3"),
        ("pydoc", "pydoc3"),
        ("python-config", "python3-config"),
    ):
        member = members[f"usr/local/bin/{link}"]
        assert member.issym() and member.linkname == target
    assert "usr/local/lib/libpython3.13.so.1.0" in names
    # CPython's own headers ship, so a derived image that installs a compiler can build
    # C extensions (the images have no compiler and no system headers: no-build-tools)
    assert {f"usr/local/include/python3.13/{h}" for h in ("Python.h", "pyconfig.h")} <= names
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())

    # the compiler flags the interpreter was built with (its sysconfig data): CPython's -O3
    # is the level that wins (not dpkg-buildflags' -O2), with Debian's hardening and frame
    # pointers
    config = sysconfig_vars(result.tarball, arch)
    cflags = config["CFLAGS"]
    levels = [f for f in cflags.split() if f.startswith("-O")]
    assert levels[-1] == "-O3", cflags
    assert "-O2" not in levels, cflags
    for flag in ("-fstack-protector-strong", "-fno-omit-frame-pointer"):
        assert flag in cflags.split(), cflags
    # dpkg-buildflags' CPPFLAGS (-D_FORTIFY_SOURCE=2) reached CPython's compile lines: the
    # interpreter calls glibc's checked functions, as Debian's python3.13 does (recipe 7,
    # without them, called none)
    dynsym = ELFFile(io.BytesIO(interpreter)).get_section_by_name(".dynsym")
    assert isinstance(dynsym, SymbolTableSection)
    checked = {s.name for s in dynsym.iter_symbols() if s.name.endswith("_chk")}
    assert {"__memcpy_chk", "__snprintf_chk"} <= checked, sorted(checked)

    # libpython3.so alone has a RUNPATH, for libpython3.13.so beside it; the extension
    # modules none (recipe 9's $ORIGIN/../lib was lib-dynload/../lib, which does not
    # exist), nor does sysconfig's LDSHARED give one to the extensions users build
    assert len(search_paths) > 50
    with_paths = {name: paths for name, paths in search_paths.items() if paths != ((), ())}
    assert with_paths == {"usr/local/lib/libpython3.so": (("$ORIGIN",), ())}
    for name in ("LDSHARED", "BLDSHARED", "LDFLAGS", "PY_LDFLAGS", "PY_CORE_LDFLAGS"):
        assert "rpath" not in config[name] and "ORIGIN" not in config[name], config[name]


def test_arm64_has_every_extension_of_amd64(runtime_factory: RuntimeFactory) -> None:
    amd64 = set(runtime_factory("amd64").record["extension_modules"])
    arm64 = set(runtime_factory("arm64").record["extension_modules"])
    assert amd64 == arm64


def test_unchanged_inputs_are_a_quick_cache_hit(
    runtime_factory: RuntimeFactory, cpython_source: Path, runtime_store: Store
) -> None:
    first = runtime_factory("arm64")
    start = time.monotonic()
    again = build_runtime(
        first.spec, cpython_source, runtime_store, epoch=TEST_EPOCH, mirrors=machine_mirrors()
    )
    assert time.monotonic() - start < 1
    assert again.cached and again.key == first.key and again.tarball == first.tarball


@pytest.fixture(params=ARCHES)
def image_root(
    request: pytest.FixtureRequest,
    runtime_factory: RuntimeFactory,
    base_factory: BaseFactory,
    tmp_path: Path,
) -> Iterator[tuple[str, Path]]:
    """A Debian 13 regular base with the runtime unpacked over it, as a directory."""
    arch: str = request.param
    if arch != host_arch():
        ensure_binfmt(arch)
    base = base_factory(arch, "regular")
    runtime = runtime_factory(arch)
    root = tmp_path / "root"
    root.mkdir()
    for tar in (base.rootfs, runtime.tarball):
        subprocess.run(["tar", "-xf", str(tar), "-C", str(root)], check=True)
    yield arch, root
    shutil.rmtree(root)  # a few hundred MB: do not leave it for pytest's tmp retention


def test_runtime_runs_in_debian13_base(image_root: tuple[str, Path]) -> None:
    arch, root = image_root
    # a container-like root: /proc mounted (the loader resolves RUNPATH $ORIGIN through it)
    run_in = bwrap_argv(root, writable=True, env=emulation_env(arch))
    out = subprocess.run(
        [*run_in, "python3", "-c", CHECK], capture_output=True, text=True, check=False, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [CPYTHON_VERSION, ARCH_TABLE[arch].gnu]
    # pip itself, on both arches (arm64 through qemu with emulation_env's CPU model)
    pip_cmd = ["pip", "--version"]
    pip = subprocess.run(
        [*run_in, *pip_cmd], capture_output=True, text=True, check=False, timeout=600
    )
    assert pip.returncode == 0, pip.stderr
    assert pip.stdout.startswith("pip ")
    assert "(python 3.13)" in pip.stdout


def test_the_build_roots_bolt_tools_find_their_runtime(runtime_store: Store) -> None:
    """--enable-bolt runs llvm-bolt with -instrument, which links the runtime it finds
    next to itself (<its dir>/../lib/libbolt_rt_instr.a): the tools must be named by a
    path where that holds (through /usr/bin/llvm-bolt-19, a symlink, it does not)."""
    distro = get_distro("debian", "13")
    root = ensure_buildroot(
        BuildRootSpec(distro, "amd64"), runtime_store, mirrors=machine_mirrors()
    )
    llvm_bolt, merge_fdata = (Path(p) for p in distro.bolt_tools[:2])
    for tool in (llvm_bolt, merge_fdata):
        inside = root / tool.relative_to("/")
        assert inside.is_file() and not inside.is_symlink(), tool
    assert (root / llvm_bolt.parent.relative_to("/") / "../lib/libbolt_rt_instr.a").is_file()
