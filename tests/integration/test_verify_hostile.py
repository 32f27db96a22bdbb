"""verify against hostile images: symlinks onto the host, huge files, a hanging probe.

Each hostile image is the good 3.13 amd64 image plus one layer (``derive_image``)
whose symlinks point outside the root: at a canary tree this test makes on the host
(``/var/tmp/bink-canary-*``), at ``/etc``, relative escapes with ``..``. verify must
fail the image (exit 8, one line per failing check, no traceback) within its time
limits, and write nothing on the host outside its scratch space: the canary tree
(contents, modes, mtimes) and ``/etc``'s listing are the same before and after.
Some canaries hold exactly what a check wants (a valid ``apps`` passwd line, an
amd64 ELF): had the host followed the image's symlink, that check would pass.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bink_python.host import proc
from bink_python.image.description import describe_image
from bink_python.oci.rootfs import MAX_TEXT
from bink_python.runtime.elf import ELF_MAGIC, MAX_ELF_BYTES
from bink_python.settings import Settings
from bink_python.verify import CHECKS, ImageReport, Target, verify_targets
from bink_python.verify.imagerun import Buildah
from bink_python.verify.inimage import probe_wheel
from bink_python.verify.registry import PYCACHE
from tests.support.machine import machine_mirrors, machine_settings

from .fixtures_verify import GoodLayout, derive_image

TAG, ARCH = "3.13", "amd64"
#: An argument no other process on the machine has: the hanging probe's ``sleep``.
HANG_MARK = "3133731"
#: Where the canary trees go (on the host).
CANARY_PREFIX = os.path.realpath("/var/tmp") + "/bink-canary-"
#: Checks every static case runs (pip and venv only where a case needs them: slow).
FAST = tuple(name for name in CHECKS if name not in ("pip", "venv"))


# -- the canary tree on the host -----------------------------------------------------


def _snapshot(top: Path) -> dict[str, tuple[int, int, int, str]]:
    """path -> (mode, size, mtime_ns, sha256 or link target) of every entry below ``top``."""
    out: dict[str, tuple[int, int, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [".", *dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            if path.is_symlink():
                what = "-> " + os.readlink(path)
            elif path.is_file():
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = "dir"
            out[str(path.relative_to(top))] = (st.st_mode, st.st_size, st.st_mtime_ns, what)
    return out


def _etc_listing() -> dict[str, int]:
    return {e.name: e.stat(follow_symlinks=False).st_mtime_ns for e in os.scandir("/etc")}


@dataclass(frozen=True)
class Canary:
    root: Path
    standin: Path  # an amd64 ELF that would pass the linkerd-await check


@pytest.fixture(scope="module")
def canary(good_amd64: GoodLayout) -> Iterator[Canary]:
    root = Path(f"{CANARY_PREFIX}{os.getpid()}-{time.time_ns()}")
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napps:x:10000:10000:apps:/home/apps:/bin/sh\n"
    )
    (root / "etc/group").write_text("root:x:0:\napps:x:10000:\n")
    for name in ("tmp", "home", "home/apps", "bin"):
        (root / name).mkdir()
    os.chown(root / "home/apps", 10000, 10000)
    shutil.copyfile(good_amd64.standins[ARCH], root / "bin/linkerd-await")
    (root / "bin/linkerd-await").chmod(0o755)
    (root / "planted").write_text("canary: verify must never write here\n")
    yield Canary(root, root / "bin/linkerd-await")
    shutil.rmtree(root)


# -- the hostile images --------------------------------------------------------------

Mutate = Callable[[Path, Canary], None]


def _replace(root: Path, inner: str, target: str) -> None:
    """Make ``inner`` (in the image) a symlink to ``target``, whatever was there."""
    path = root / inner.lstrip("/")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.symlink_to(target)


def _tmp_to(target: Callable[[Canary], str]) -> Mutate:
    def mutate(root: Path, canary: Canary) -> None:
        _replace(root, "/tmp", target(canary))

    return mutate


def _planted_scratch(root: Path, canary: Canary) -> None:
    """A real /tmp whose scratch paths are already taken by symlinks onto the host."""
    wheel, _ = probe_wheel()
    scratch = root / "tmp/bink-verify"
    scratch.mkdir()
    (scratch / wheel).symlink_to(canary.root / "planted")
    (root / PYCACHE.lstrip("/")).symlink_to(canary.root)


def _home_to_canary(root: Path, canary: Canary) -> None:
    _replace(root, "/home/apps", str(canary.root / "home/apps"))


def _binaries_to_host(root: Path, canary: Canary) -> None:
    _replace(root, "/usr/local/bin/python3", "/usr/bin/python3")  # the host's python
    _replace(root, "/usr/local/bin/linkerd-await", str(canary.standin))


def _passwd_to_host(root: Path, canary: Canary) -> None:
    _replace(root, "/etc/passwd", str(canary.root / "etc/passwd"))
    _replace(root, "/etc/group", "../../../../../../../etc/group")  # climbs to the image's /


def _huge_files(root: Path, canary: Canary) -> None:
    """An /etc/passwd past the read bound, an ELF past the ELF bound (sparse here; the
    layer stores its zeros), a FIFO and an include bomb in ld.so.conf.d."""
    del canary
    passwd = root / "etc/passwd"
    with open(passwd, "a") as handle:
        handle.write("\n" * (MAX_TEXT + 1))  # the apps line is still there, first
    huge = root / "usr/local/lib/bink-huge.so"
    with open(huge, "wb") as handle:
        handle.write(ELF_MAGIC + b"\x02\x01\x01")
        handle.truncate(MAX_ELF_BYTES + (1 << 20))
    confd = root / "etc/ld.so.conf.d"
    os.mkfifo(confd / "0-fifo.conf")
    for i in range(12):  # each includes all: 12**8 reads without a bound
        (confd / f"bomb{i}.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")


def _etc_to_canary(root: Path, canary: Canary) -> None:
    """The whole /etc a link onto the host: buildah sets up /etc/hosts and
    /etc/resolv.conf in the container's tree before running anything."""
    _replace(root, "/etc", str(canary.root / "etc"))


#: The argument of the process the daemon image leaves running (see ``_daemon``).
DAEMON_MARK = "3133732"


def _daemon(root: Path, canary: Canary) -> None:
    """Every python3 start leaves a detached process behind (sitecustomize)."""
    del canary
    site = root / "usr/local/lib/python3.13/site-packages/sitecustomize.py"
    site.write_text(
        "import os, subprocess\n"
        f"subprocess.Popen(['sleep', '{DAEMON_MARK}'], start_new_session=True,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    )


def _hanging_python(root: Path, canary: Canary) -> None:
    del canary
    python = root / "usr/local/bin/python3"
    python.unlink()
    python.write_text(f"#!/bin/sh\nexec sleep {HANG_MARK}\n")
    python.chmod(0o755)


def _apply(mutate: Mutate, root: Path, *, canary: Canary) -> None:
    mutate(root, canary)


@dataclass(frozen=True)
class Hostile:
    name: str
    mutate: Mutate
    checks: tuple[str, ...]
    failing: frozenset[str]  # at least these checks fail
    message: str = ""  # in the detail of one of them
    passing: frozenset[str] = frozenset()  # and these still pass (the trap was defused)


CASES = (
    Hostile(
        "tmp-to-host-etc",
        _tmp_to(lambda c: "/etc"),
        (*FAST, "pip"),
        frozenset({"apps-user", "pip"}),
        "cannot write /tmp",
    ),
    Hostile(
        "tmp-to-canary",
        _tmp_to(lambda c: str(c.root / "tmp")),
        (*FAST, "pip"),
        frozenset({"apps-user", "pip"}),
        "cannot write /tmp",
    ),
    Hostile(
        "tmp-relative-escape",
        _tmp_to(lambda c: "../../../../../../.." + str(c.root / "tmp")),
        (*FAST, "pip"),
        frozenset({"apps-user", "pip"}),
        "cannot write /tmp",
    ),
    Hostile(
        "scratch-planted",
        _planted_scratch,
        ("pip", "python-version"),
        frozenset(),
        passing=frozenset({"pip", "python-version"}),
    ),
    Hostile(
        "home-to-canary",
        _home_to_canary,
        FAST,
        frozenset({"apps-user"}),
        "home /home/apps does not exist",
    ),
    Hostile(
        "binaries-to-host",
        _binaries_to_host,
        FAST,
        frozenset({"python-version", "linkerd-await"}),
        "/usr/local/bin/linkerd-await is missing",
    ),
    Hostile(
        "passwd-to-host",
        _passwd_to_host,
        FAST,
        frozenset({"apps-user"}),
        "user apps missing from /etc/passwd",
    ),
    Hostile(
        "huge-files",
        _huge_files,
        FAST,
        frozenset({"apps-user", "elf-needed"}),
        "more than the",
    ),
    Hostile(
        "etc-to-canary",
        _etc_to_canary,
        FAST,
        frozenset({"apps-user", "python-version", "recursion"}),
        f"not run: /etc -> {CANARY_PREFIX}",
    ),
    Hostile(
        "daemon",
        _daemon,
        ("python-version", "recursion"),
        frozenset(),
        passing=frozenset({"python-version", "recursion"}),
    ),
)


@pytest.fixture(scope="module")
def hostile_run(
    good_amd64: GoodLayout,
    buildah_for_tests: Buildah,
    canary: Canary,
    tmp_path_factory: pytest.TempPathFactory,
) -> HostileRun:
    """Every hostile image verified in one session, with the host checked around it."""
    dest = tmp_path_factory.mktemp("hostile") / "oci"
    tag = good_amd64.family.tag(TAG)
    expect = describe_image(good_amd64.family, tag, ARCH, mirrors=machine_mirrors())
    targets = []
    for case in CASES:
        derived = derive_image(
            buildah_for_tests,
            good_amd64.layout,
            good_amd64.manifest(TAG, ARCH),
            dest,
            case.name,
            mutate=functools.partial(_apply, case.mutate, canary=canary),
        )
        targets.append(Target(derived, replace(expect, tag=case.name), case.checks))
    before, etc = _snapshot(canary.root), _etc_listing()
    start = time.monotonic()
    report = verify_targets(
        dest, targets, session=buildah_for_tests, cache_dir=machine_settings().cache_dir
    )
    seconds = time.monotonic() - start
    print(report.table())
    print(f"{len(CASES)} hostile images verified in {seconds:.0f}s")
    return HostileRun(
        {i.tag: i for i in report.images},
        seconds,
        canary_changed=_snapshot(canary.root) != before,
        etc_changed=_etc_listing() != etc,
    )


@dataclass(frozen=True)
class HostileRun:
    reports: dict[str, ImageReport]
    seconds: float
    canary_changed: bool
    etc_changed: bool


def test_verify_writes_nothing_on_the_host(hostile_run: HostileRun, canary: Canary) -> None:
    assert not hostile_run.canary_changed, sorted(p.name for p in canary.root.rglob("*"))
    assert not hostile_run.etc_changed
    leftovers = [
        path
        for top in ("/", "/etc", str(canary.root), str(canary.root / "tmp"))
        for path in Path(top).glob("bink-verify*")
    ]
    assert leftovers == []


def test_no_process_of_an_image_outlives_verify(hostile_run: HostileRun) -> None:
    left = subprocess.run(["pgrep", "-af", f"sleep {DAEMON_MARK}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"a process started in an image survived: {left.stdout}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_image_fails_cleanly(case: Hostile, hostile_run: HostileRun) -> None:
    report = hostile_run.reports[case.name]
    failed = {c.name: c for c in report.failed}
    passed = {c.name for c in report.checks if c.status == "pass"}
    assert case.failing <= set(failed), report.checks
    assert case.passing <= passed, report.checks
    if case.message:
        assert any(case.message in c.detail for c in failed.values()), report.checks
    for result in report.checks:  # one line each, never a traceback
        assert "\n" not in result.detail and "Traceback" not in result.detail, result


def test_cli_fails_a_hostile_image_with_exit_8_and_one_line(
    good_amd64: GoodLayout,
    buildah_for_tests: Buildah,
    canary: Canary,
    tmp_path: Path,
) -> None:
    """``bink-python verify`` on a hostile image (its /tmp a symlink to /etc): exit 8,
    the table with one row per check on stdout, one ``error:`` line on stderr."""
    dest = tmp_path / "oci"
    derive_image(
        buildah_for_tests,
        good_amd64.layout,
        good_amd64.manifest(TAG, ARCH),
        dest,
        TAG,
        mutate=lambda root: _tmp_to(lambda c: "/etc")(root, canary),
    )
    etc = _etc_listing()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bink_python", "verify", "--quiet"),
            *("--config", str(good_amd64.family.path), "--layout", str(dest)),
            *("--arch", ARCH, TAG),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    print(done.stdout, done.stderr)
    assert done.returncode == 8
    assert _etc_listing() == etc
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(f"{TAG} ")]
    assert sorted(r[2] for r in rows) == sorted(CHECKS)
    assert "apps-user: user apps cannot write /tmp" in errors[0]


def test_a_hanging_probe_is_stopped_by_its_time_limit(
    good_amd64: GoodLayout,
    buildah_for_tests: Buildah,
    canary: Canary,
    tmp_path: Path,
) -> None:
    """python3 replaced by a program that never ends: each check that runs it fails
    with "timed out" after BINK_PYTHON_TIMEOUT_PROBE seconds, and nothing it started
    survives."""
    limit = 15
    dest = tmp_path / "oci"
    derived = derive_image(
        buildah_for_tests,
        good_amd64.layout,
        good_amd64.manifest(TAG, ARCH),
        dest,
        "hanging-python",
        mutate=lambda root: _hanging_python(root, canary),
    )
    tag = good_amd64.family.tag(TAG)
    expect = replace(
        describe_image(good_amd64.family, tag, ARCH, mirrors=machine_mirrors()),
        tag="hanging-python",
    )
    checks = ("python-version", "recursion")
    proc.set_timeouts(Settings.resolve(environ={"BINK_PYTHON_TIMEOUT_PROBE": str(limit)}).timeouts)
    before = _snapshot(canary.root)
    start = time.monotonic()
    try:
        report = verify_targets(
            dest,
            [Target(derived, expect, checks)],
            session=buildah_for_tests,
            cache_dir=machine_settings().cache_dir,
        )
    finally:
        proc.set_timeouts(())
    seconds = time.monotonic() - start
    print(report.table(), f"{seconds:.0f}s")
    failed = {c.name: c for c in report.images[0].failed}
    assert set(failed) == set(checks)
    for result in failed.values():
        assert "timed out" in result.detail and "\n" not in result.detail, result
        assert result.seconds < limit + 30, result
    assert seconds < len(checks) * (limit + 30) + 120
    left = subprocess.run(["pgrep", "-f", f"sleep {HANG_MARK}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"the hanging probe survived: {left.stdout}"
    assert _snapshot(canary.root) == before


def test_control_the_good_image_passes_every_check_unprivileged(
    good_amd64: GoodLayout, buildah_for_tests: Buildah, canary: Canary
) -> None:
    """The image the hostile ones derive from passes every check with the same verify
    (programs run as 10000:10000, fresh scratch): the failures above are the layer's."""
    tag = good_amd64.family.tag(TAG)
    target = Target(
        good_amd64.manifest(TAG, ARCH),
        describe_image(good_amd64.family, tag, ARCH, mirrors=machine_mirrors()),
    )
    before = _snapshot(canary.root)
    report = verify_targets(
        good_amd64.layout.path,
        [target],
        session=buildah_for_tests,
        cache_dir=machine_settings().cache_dir,
    )
    print(report.table())
    statuses = {c.name: c.status for c in report.images[0].checks}
    assert report.ok, report.table()
    # a regular image, published gzip only: nothing for these two to check
    assert {n for n, s in statuses.items() if s == "skip"} == {
        "distroless",
        "compression-instances",
    }
    assert _snapshot(canary.root) == before
