"""Unit tests of verify's pure parts: ELF reading, path resolution inside a root,
NEEDED resolution, expectations, the probe wheel, report rendering."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bink_python.errors import VerifyError
from bink_python.family.config import Family, Tag, User, YearMonth
from bink_python.image.description import describe_image
from bink_python.oci.rootfs import resolve_in_root
from bink_python.publish.readme import verify_checks
from bink_python.runtime.elf import ElfError, read_elf, read_elf_file
from bink_python.settings import Mirrors
from bink_python.verify import (
    CHECKS,
    CheckResult,
    ImageReport,
    VerifyReport,
    library_dirs,
    probe_wheel,
    runner,
    unresolved_needed,
)
from bink_python.verify.imagerun import RunResult
from bink_python.verify.registry import CheckFailed, Probe
from tests.support.tools import requires_tool

C_SOURCE = "int main(void) { return 0; }\n"


def _family(tmp_path: Path) -> Family:
    from bink_python.family.config import Component

    tag = Tag(
        name="3.13-distroless",
        status="evaluation",
        python="3.13.15",
        os="debian",
        release="13",
        variant="distroless",
        eol=YearMonth(2029, 4),
        arches=("amd64", "arm64"),
        components=("linkerd-await",),
    )
    return Family(
        path=tmp_path / "images.toml",
        registry="ghcr.io/example/python",
        title="t",
        description="d",
        source="s",
        vendor="v",
        licenses="PSF-2.0",
        arches=("amd64", "arm64"),
        user=User("apps", 10000, 10000, "/home/apps"),
        components=(Component("linkerd-await", "0.3.3", "/usr/local/bin/linkerd-await", "h"),),
        tags=(tag,),
    )


def test_expectation_from_tag(tmp_path: Path) -> None:
    family = _family(tmp_path)
    e = describe_image(family, family.tags[0], "arm64", error=VerifyError, mirrors=Mirrors())
    assert e.version == "3.13.15"
    assert e.distroless
    assert e.default_user == "10000:10000"
    assert e.multiarch == "aarch64-linux-gnu"
    assert e.machine == 183
    assert e.eol == "2029-04"
    assert e.status == "evaluation"
    assert e.components == (("linkerd-await", "/usr/local/bin/linkerd-await"),)
    assert str(e.platform) == "linux/arm64/v8"
    regular = describe_image(
        family, Tag(**{**family.tags[0].__dict__, "variant": "regular"}), "amd64", mirrors=Mirrors()
    )
    assert regular.default_user == ""
    assert regular.multiarch == "x86_64-linux-gnu"
    with pytest.raises(VerifyError, match="unknown arch"):
        describe_image(family, family.tags[0], "s390x", error=VerifyError, mirrors=Mirrors())


def _compile(tmp_path: Path, compiler: str, name: str, *flags: str) -> Path:
    requires_tool(compiler, "gcc-aarch64-linux-gnu" if "aarch64" in compiler else "gcc")
    src = tmp_path / "prog.c"
    src.write_text(C_SOURCE)
    out = tmp_path / name
    subprocess.run([compiler, *flags, "-o", str(out), str(src)], check=True)
    return out


def test_read_elf_of_host_python() -> None:
    info = read_elf_file(Path(sys.executable).resolve())
    assert info is not None
    assert info.elf_class == 2
    assert info.interpreter.startswith("/lib")
    assert "libc.so.6" in info.needed or any("python" in n for n in info.needed)


def test_read_elf_rpath_and_machine(tmp_path: Path) -> None:
    prog = _compile(tmp_path, "gcc", "prog", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")
    info = read_elf_file(prog)
    assert info is not None
    assert info.machine == 62
    assert info.needed == ("libc.so.6",)
    assert info.runpath == ("$ORIGIN/../lib",)
    assert info.rpath == ()
    arm = _compile(
        tmp_path,
        "aarch64-linux-gnu-gcc",
        "prog-arm",
        "-Wl,-rpath,/opt/x",
        "-Wl,--disable-new-dtags",
    )
    info = read_elf_file(arm)
    assert info is not None
    assert info.machine == 183
    assert info.rpath == ("/opt/x",)
    assert info.interpreter == "/lib/ld-linux-aarch64.so.1"
    static = _compile(tmp_path, "gcc", "prog-static", "-static")
    info = read_elf_file(static)
    assert info is not None and info.needed == () and info.interpreter == ""


def test_read_elf_rejects_garbage(tmp_path: Path) -> None:
    assert read_elf_file(_write(tmp_path / "text", b"#!/bin/sh\necho hi\n")) is None
    with pytest.raises(ElfError):
        read_elf(b"\x7fELF" + b"\x09" * 60)
    with pytest.raises(ElfError):
        read_elf(b"\x7fELF\x02\x01\x01" + b"\0" * 9 + b"\x03\x00\x3e\x00" + b"\0" * 4)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_resolve_in_root_keeps_absolute_links_inside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _write(root / "usr/lib/x/libfoo.so.1", b"lib")
    (root / "lib").symlink_to("usr/lib")
    (root / "usr/lib/x/libfoo.so").symlink_to("/usr/lib/x/libfoo.so.1")
    (root / "usr/lib/x/escape").symlink_to("/../../../etc/passwd")
    assert resolve_in_root(root, "/lib/x/libfoo.so") == root / "usr/lib/x/libfoo.so.1"
    assert resolve_in_root(root, "/lib/x/missing") is None
    # a link that climbs above / stays in the root (and there is no etc/passwd there)
    assert resolve_in_root(root, "/usr/lib/x/escape") is None
    (root / "loop").symlink_to("/loop")
    assert resolve_in_root(root, "/loop") is None


def test_unresolved_needed_finds_missing_libraries(tmp_path: Path) -> None:
    prog = _compile(tmp_path, "gcc", "prog", "-Wl,-rpath,$ORIGIN/../lib")
    root = tmp_path / "root"
    _write(root / "usr/local/bin/prog", prog.read_bytes())
    scanned, problems = unresolved_needed(root, "x86_64-linux-gnu", 62)
    assert scanned == 1
    assert "/usr/local/bin/prog: NEEDED libc.so.6 not found" in problems
    assert any("interpreter /lib64/ld-linux-x86-64.so.2 not found" in p for p in problems)
    # the host's libc and loader, copied into the image, satisfy both
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6").resolve()
    loader = Path("/lib64/ld-linux-x86-64.so.2").resolve()
    _write(root / "usr/lib/x86_64-linux-gnu/libc.so.6", libc.read_bytes())
    _write(root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", loader.read_bytes())
    (root / "lib64").mkdir()
    (root / "lib64/ld-linux-x86-64.so.2").symlink_to(
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    )
    (root / "lib").symlink_to("usr/lib")
    scanned, problems = unresolved_needed(root, "x86_64-linux-gnu", 62)
    assert problems == []
    # a library of the wrong architecture does not count
    scanned, problems = unresolved_needed(root, "x86_64-linux-gnu", 183)
    assert any("NEEDED" in p for p in problems)


def test_runpath_origin_resolution(tmp_path: Path) -> None:
    prog = _compile(tmp_path, "gcc", "prog", "-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags")
    data = prog.read_bytes()
    root = tmp_path / "root"
    _write(root / "opt/app/bin/prog", data)
    # libc found only through $ORIGIN/../lib
    _write(
        root / "opt/app/lib/libc.so.6",
        Path("/lib/x86_64-linux-gnu/libc.so.6").resolve().read_bytes(),
    )
    _, problems = unresolved_needed(root, "x86_64-linux-gnu", 62)
    assert not any(p.startswith("/opt/app/bin/prog: NEEDED") for p in problems)
    # found nowhere else: without the RUNPATH entry it would be missing
    (root / "opt/app/lib/libc.so.6").rename(root / "opt/app/libc.so.6")
    _, problems = unresolved_needed(root, "x86_64-linux-gnu", 62)
    assert "/opt/app/bin/prog: NEEDED libc.so.6 not found" in problems


def test_library_dirs_use_ld_so_conf_only_with_a_cache(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _write(root / "etc/ld.so.conf", b"include /etc/ld.so.conf.d/*.conf\n")
    _write(root / "etc/ld.so.conf.d/libc.conf", b"# comment\n/usr/local/lib\n")
    assert "/usr/local/lib" not in library_dirs(root, "x86_64-linux-gnu")
    _write(root / "etc/ld.so.cache", b"")
    dirs = library_dirs(root, "x86_64-linux-gnu")
    assert dirs[0] == "/usr/local/lib"
    assert "/usr/lib/x86_64-linux-gnu" in dirs


def test_probe_wheel_is_a_valid_wheel(tmp_path: Path) -> None:
    name, data = probe_wheel()
    assert name == "bink_verify_probe-1.0-py3-none-any.whl"
    wheel = _write(tmp_path / name, data)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        record = zf.read("bink_verify_probe-1.0.dist-info/RECORD").decode()
    assert "bink_verify_probe/__init__.py" in names
    assert "bink_verify_probe/__init__.py,sha256=" in record
    assert probe_wheel() == (name, data)  # deterministic
    target = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if "No module named pip" in proc.stderr:
        pytest.skip("pip not available to the test interpreter")
    assert proc.returncode == 0, proc.stderr
    assert (target / "bink_verify_probe/__init__.py").read_text() == 'VALUE = "bink-verify-ok"\n'


def _report() -> VerifyReport:
    checks = (
        CheckResult("python-version", "pass", "Python 3.13.15, x86_64-linux-gnu"),
        CheckResult("tls-trust-store", "fail", "no CA certificates loaded", "$ python3 -c ...\n{}"),
        CheckResult("venv", "skip", "not applicable: distroless image"),
    )
    return VerifyReport((ImageReport("3.13-distroless", "amd64", "sha256:" + "0" * 64, checks),))


def test_report_table_and_json() -> None:
    report = _report()
    assert not report.ok
    table = report.table()
    lines = table.splitlines()
    assert lines[0].split() == ["TAG", "ARCH", "CHECK", "RESULT", "DETAIL"]
    assert "tls-trust-store  fail    no CA certificates loaded" in table
    assert "1 image(s): 1 passed, 1 failed" in table
    assert "--- 3.13-distroless amd64 tls-trust-store\n$ python3 -c ..." in table
    data = json.loads(report.to_json())
    assert data["ok"] is False
    image = data["images"][0]
    assert [c["status"] for c in image["checks"]] == ["pass", "fail", "skip"]
    assert image["checks"][1]["output"].startswith("$ python3")
    with pytest.raises(
        VerifyError, match=r"1 check\(s\) failed: 3.13-distroless amd64 tls-trust-store"
    ):
        report.raise_for_failures()
    assert VerifyError.exit_code == 8


def test_passing_report_does_not_raise() -> None:
    ok = VerifyReport(
        (
            ImageReport(
                "3.13",
                "arm64",
                "sha256:" + "1" * 64,
                (CheckResult("recursion", "pass", "depth 9998"),),
            ),
        )
    )
    ok.raise_for_failures()
    assert ok.ok


def test_checks_registry_and_readme_section(tmp_path: Path) -> None:
    expected = {
        "python-version",
        "stdlib-imports",
        "tls-trust-store",
        "pip",
        "venv",
        "apps-user",
        "linkerd-await",
        "no-build-tools",
        "distroless",
        "image-config",
        "elf-needed",
        "recursion",
        "utf8-filenames",
        "apt-sources",
        "stdlib-bytecode",
        "stdlib-no-compile",
        "compression-instances",
        "ld-cache",
    }
    assert set(CHECKS) == expected
    assert all(doc.strip() for doc in CHECKS.values())
    section = verify_checks(_family(tmp_path))
    for name in expected:
        assert f"| `{name}` |" in section
    with pytest.raises(VerifyError, match="unknown check 'nope'"):
        runner._ordered(["nope"])
    order = [c.name for c in runner._ordered(None)]
    # file-reading checks come before anything runs inside the image
    assert order.index("no-build-tools") < order.index("python-version")


def test_read_elf_of_arch_names_the_wrong_machine(tmp_path: Path) -> None:
    from bink_python.runtime.elf import read_elf_of_arch

    prog = _compile(tmp_path, "gcc", "prog")
    assert read_elf_of_arch(prog, "amd64").machine == 62
    with pytest.raises(ElfError, match=r"^is built for x86-64, not for arm64 \(AArch64\)$"):
        read_elf_of_arch(prog, "arm64")
    with pytest.raises(ElfError, match=r"^is not an ELF file$"):
        read_elf_of_arch(_write(tmp_path / "text", b"#!/bin/sh\n"), "amd64")


class _Flaky:
    """A container whose runs print the given outputs in turn (exit 0)."""

    def __init__(self, root: Path, outputs: list[str]) -> None:
        self.rootfs = root
        self.outputs = outputs
        self.runs = 0

    def run(self, argv: list[str], **_: object) -> RunResult:
        self.runs += 1
        return RunResult(tuple(argv), 0, self.outputs.pop(0))


def test_a_probe_that_prints_no_json_fails_at_once(tmp_path: Path) -> None:
    """Output is read back whole from a file (never lost by buildah's relay), so a probe
    that printed nothing, or no JSON, ran wrongly: it fails on its first run."""
    family = _family(tmp_path)
    expect = describe_image(family, family.tags[0], "amd64", mirrors=Mirrors())
    for printed in ("", "not json\n"):
        container = _Flaky(tmp_path, [printed, '{"ok": true}\n'])
        probe = Probe(expect, container, {}, {})  # type: ignore[arg-type]
        with pytest.raises(CheckFailed, match="printed no JSON result"):
            probe.python("print(1)")
        assert container.runs == 1


class _Recording(_Flaky):
    """A flaky container that also records the user and environment of each run."""

    def __init__(self, root: Path, outputs: list[str]) -> None:
        super().__init__(root, outputs)
        self.calls: list[tuple[list[str], object, str]] = []

    def run(self, argv: list[str], **options: object) -> RunResult:
        self.calls.append((list(argv), options.get("user"), str(options.get("env"))))
        return super().run(argv)


def test_a_probe_runs_with_the_options_it_is_given(tmp_path: Path) -> None:
    family = _family(tmp_path)
    expect = describe_image(family, family.tags[0], "amd64", mirrors=Mirrors())
    container = _Recording(tmp_path, ['{"ok": true}\n'] * 2)
    probe = Probe(expect, container, {}, {})  # type: ignore[arg-type]
    assert probe.probe("utf8") == {"ok": True}
    probe.probe("utf8", "x", user="0:0", interpreter="/venv/bin/python", own_bytecode=True)
    (argv, user, env), (argv2, user2, env2) = container.calls
    assert argv[:2] == ["python3", "-c"] and user == probe.unprivileged
    assert "PYTHONPYCACHEPREFIX=" in env
    assert argv2[0] == "/venv/bin/python" and argv2[-1] == "x" and user2 == "0:0"
    assert "PYTHONPYCACHEPREFIX=" not in env2
