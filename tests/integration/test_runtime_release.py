"""The release runtime (CPython 3.13.15, Debian 13, amd64): PGO, LTO, the interpreter
core linked into ``python3.13`` while ``libpython3.13.so`` ships, and stdlib bytecode that a
process as uid 10000 on a read-only root filesystem imports without compiling anything.

Built once (about 12 minutes of an idle 2-core machine) and kept in the shared test cache
like the fast runtimes; every assertion reads the built bits, not the recipe.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
from bench.sandbox import bwrap_argv
from elftools.elf.elffile import ELFFile

from bink_python.host.arch import host_arch
from bink_python.runtime.contents import REMOVED_STDLIB_MODULES
from bink_python.runtime.elf import read_elf_file
from bink_python.runtime.spec import RuntimeResult
from tests.support.runtimes import RuntimeFactory, runtime_member, sysconfig_vars

from .fixtures_base import BaseFactory

pytestmark = [
    # in the default suite: the one release (PGO+LTO) compile of a cold run, about 12
    # minutes of a 2-core machine; cached like the fast runtimes afterwards
    pytest.mark.skipif(host_arch() != "amd64", reason="builds the amd64 runtime natively"),
]

LIB = "usr/local/lib/python3.13"
#: The import set of the bench's start-up comparison.
IMPORTS = (
    "asyncio, json, ssl, email.message, http.client, logging, decimal, argparse, "
    "urllib.request, subprocess"
)


@pytest.fixture(scope="module")
def release(runtime_factory: RuntimeFactory) -> RuntimeResult:
    return runtime_factory("amd64", "release")


@pytest.fixture(scope="module")
def members(release: RuntimeResult) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(release.tarball) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_interpreter_core_is_static_and_libpython_ships(
    release: RuntimeResult, members: dict[str, tarfile.TarInfo], tmp_path: Path
) -> None:
    python = tmp_path / "python3.13"
    python.write_bytes(runtime_member(release.tarball, "usr/local/bin/python3.13"))
    info = read_elf_file(python)
    assert info is not None
    needed = info.needed
    assert "libc.so.6" in needed
    assert not [n for n in needed if n.startswith("libpython")], needed
    library = members["usr/local/lib/libpython3.13.so.1.0"]
    assert library.isfile() and library.size > 1_000_000
    assert members["usr/local/lib/libpython3.13.so"].issym()
    assert not [n for n in members if n.endswith(".a")]
    record = release.record
    assert record["static_interpreter"] is True
    assert record["pgo"] is True and record["lto"] is True


@pytest.fixture(scope="module")
def build_vars(release: RuntimeResult) -> dict[str, str]:
    """The runtime's sysconfig build variables (its ``_sysconfigdata`` module)."""
    return sysconfig_vars(release.tarball, "amd64")


def test_sysconfig_shows_pgo_and_lto(build_vars: dict[str, str]) -> None:
    config = build_vars
    for arg in ("--enable-optimizations", "--with-lto", "--enable-shared"):
        assert arg in config["CONFIG_ARGS"], config["CONFIG_ARGS"]
    # the profile-use flags reach make on its command line (profile-opt), not the Makefile
    assert "-fprofile-use" in config["PGO_PROF_USE_FLAG"].split()
    nodist = config["PY_CFLAGS_NODIST"].split()
    assert [f for f in nodist if f.startswith("-flto")], nodist
    # configure adds it for PGO builds with GCC: direct calls inside libpython too
    assert "-fno-semantic-interposition" in nodist, nodist
    assert "-fno-omit-frame-pointer" in config["CFLAGS"].split()


#: x86-64's stack-protector canary load: ``mov %fs:0x28,<reg>`` (glibc's guard in the TCB).
CANARY_LOAD = re.compile(
    rb"\x64[\x48\x4c]\x8b[\x04\x0c\x14\x1c\x24\x2c\x34\x3c]\x25\x28\x00\x00\x00"
)


def test_the_interpreter_has_debians_stack_protector_level(
    release: RuntimeResult, build_vars: dict[str, str]
) -> None:
    """-fstack-protector on CPython's own compile lines, as Debian's python3.X: canaries in
    a few dozen functions (the ones with character arrays), none in the eval loop. With
    dpkg-buildflags' -strong the same build had about 1600, the eval loop among them.
    Extensions built against the runtime keep -strong (sysconfig's CFLAGS)."""
    data = runtime_member(release.tarball, "usr/local/bin/python3.13")
    elf = ELFFile(io.BytesIO(data))
    text = elf.get_section_by_name(".text")
    assert text is not None
    code = text.data()
    assert 0 < len(CANARY_LOAD.findall(code)) < 200
    dynsym = elf.get_section_by_name(".dynsym")
    (symbol,) = dynsym.get_symbol_by_name("_PyEval_EvalFrameDefault")  # type: ignore[union-attr]
    start = symbol["st_value"] - text["sh_addr"]
    loop = code[start : start + symbol["st_size"]]
    assert len(loop) > 10_000
    assert not CANARY_LOAD.search(loop)
    assert "-fstack-protector-strong" in build_vars["CFLAGS"].split()
    assert build_vars["PY_CFLAGS_NODIST"].split().count("-fstack-protector") == 1


def test_the_pgo_rebuild_compiled_the_core_with_the_profile(release: RuntimeResult) -> None:
    """The compile lines of the build (its log, kept in the cache entry): the interpreter
    loop was compiled instrumented first, then with the profile, at -O3, for LTO."""
    log = (release.tarball.parent / "build.log").read_text(errors="replace")
    ceval = [
        line
        for line in log.splitlines()
        if " -c " in line and line.rstrip().endswith("Python/ceval.c")
    ]
    assert ceval, "no compile of Python/ceval.c in the build log"
    final = ceval[-1].split()  # the PGO rebuild's, after the instrumented one
    for flag in ("-fprofile-use", "-flto", "-O3"):
        assert flag in final, flag
    assert "-fprofile-generate" in ceval[0].split()
    # the eval loop's file alone without GCSE (EVAL_LOOP_CFLAGS), in both phases
    assert "-fno-gcse" in ceval[0].split() and "-fno-gcse" in final
    others = [line for line in log.splitlines() if line.rstrip().endswith("Python/pystate.c")]
    assert others and not [line for line in others if "-fno-gcse" in line.split()]


def test_removed_modules_are_gone(members: dict[str, tarfile.TarInfo]) -> None:
    names = set(members)
    for module in REMOVED_STDLIB_MODULES:
        assert f"{LIB}/{module}" not in names and f"{LIB}/{module}.py" not in names
        assert not [n for n in names if n.startswith(f"{LIB}/lib-dynload/{module}.")]
    assert not [n for n in names if n.startswith("usr/local/bin/idle")]
    assert not [n for n in names if PurePosixPath(n).name.startswith(("_testcapi", "xxlimited"))]
    assert f"{LIB}/test" not in names


def test_stdlib_bytecode_is_present_and_valid(
    release: RuntimeResult, members: dict[str, tarfile.TarInfo]
) -> None:
    """Every stdlib source has its timestamp ``.pyc`` (the source's size and tar mtime in
    the header), no ``.pyc`` lacks its source, no optimised levels, none in site-packages."""
    sources = {
        n: m
        for n, m in members.items()
        if n.startswith(f"{LIB}/") and n.endswith(".py") and "/site-packages/" not in n
    }
    pycs = {n for n in members if n.endswith(".pyc")}
    assert len(sources) > 500
    assert not [n for n in pycs if "/site-packages/" in n or ".opt-" in n]
    expected = {}
    for name in sources:
        path = PurePosixPath(name)
        expected[str(path.parent / "__pycache__" / f"{path.stem}.cpython-313.pyc")] = name
    assert not sorted(set(expected) - pycs)[:5], "sources without bytecode"
    assert not sorted(pycs - set(expected))[:5], "orphan bytecode"
    magic = None
    with tarfile.open(release.tarball) as tar:
        for pyc, source in expected.items():
            stream = tar.extractfile(pyc)
            assert stream is not None
            header = stream.read(16)
            magic = magic or header[:4]
            assert header[:4] == magic and header[2:4] == b"\r\n", pyc
            assert int.from_bytes(header[4:8], "little") == 0, f"{pyc}: not timestamp-based"
            src = sources[source]
            assert int.from_bytes(header[8:12], "little") == int(src.mtime), pyc
            assert int.from_bytes(header[12:16], "little") == src.size, pyc
    assert release.record["bytecode"]["files"] == len(expected)


@pytest.fixture(scope="module")
def release_root(
    release: RuntimeResult, base_factory: BaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The Debian 13 regular base with the release runtime over it, as a directory."""
    root = tmp_path_factory.mktemp("release-root")
    for tar in (base_factory("amd64", "regular").rootfs, release.tarball):
        subprocess.run(["tar", "-xf", str(tar), "-C", str(root)], check=True)
    yield root
    shutil.rmtree(root)


#: Run as uid 10000: record every source compiled after start-up, check the bytecode of the
#: modules start-up imported, and import every stdlib module of the platform.
PROBE = """
import importlib.machinery as machinery, importlib.util as util, json, sys
compiled = []
original = machinery.SourceFileLoader.source_to_code
def spy(self, data, path, *args, **kwargs):
    compiled.append(path)
    return original(self, data, path, *args, **kwargs)
machinery.SourceFileLoader.source_to_code = spy
stale = []
for module in list(sys.modules.values()):
    origin = getattr(getattr(module, "__spec__", None), "origin", None) or ""
    if origin.endswith(".py"):
        cached = util.cache_from_source(origin)
        try:
            data = open(cached, "rb").read(16)
        except OSError:
            stale.append(origin)
            continue
        import os
        st = os.stat(origin)
        if data[:4] != util.MAGIC_NUMBER or int.from_bytes(data[8:12], "little") != int(
            st.st_mtime
        ):
            stale.append(origin)
removed = set(sys.argv[1].split(","))
exec("import " + sys.argv[2])
failed, found = [], []
# antigravity opens a browser, this prints; _ios_support needs Apple's ObjC runtime
for name in sorted(sys.stdlib_module_names - removed - {"antigravity", "this", "_ios_support"}):
    if name in sys.modules:
        continue
    try:
        spec = util.find_spec(name)
    except Exception as error:
        failed.append(f"{name}: {error!r}")
        continue
    if spec is None:
        continue
    try:
        __import__(name)
        found.append(name)
    except Exception as error:
        failed.append(f"{name}: {error!r}")
still_there = [n for n in removed if util.find_spec(n) is not None]
print(json.dumps({"compiled": compiled, "stale": stale, "failed": failed,
                  "imported": len(found), "removed_found": still_there}))
"""


def test_uid_10000_on_a_read_only_root_compiles_nothing(release_root: Path) -> None:
    out = subprocess.run(
        [
            *bwrap_argv(release_root, user=True, home="/home/apps"),
            "python3",
            "-c",
            PROBE,
            ",".join(sorted(REMOVED_STDLIB_MODULES)),
            IMPORTS,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["stale"] == []
    assert result["compiled"] == []
    assert result["failed"] == []
    assert result["removed_found"] == []
    assert result["imported"] > 100
