"""Progress of a fake long CPython build (its make output written to a log over time),
on a terminal (rich forced to one) and in a CI log (plain timestamped lines)."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bink_python.host.progress import Progress
from bink_python.runtime.cpythonlog import CPythonOutput, count_compiles

FLAGS = "-fno-strict-overflow -Wsign-compare -DNDEBUG -g -O3 -Wall -fPIC -DPy_BUILD_CORE"
OBJECTS = [f"Objects/obj{i}.o" for i in range(8)]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def compile_line(obj: str, extra: str = "") -> str:
    return f"gcc -c {FLAGS} {extra} -I./Include -o {obj} {obj[:-2]}.c"


def fake_pgo_lto_make() -> list[str]:
    """CPython's ``make`` output of a PGO+LTO build, in the order make prints it."""
    lines = [
        "Running code to generate profile data (this can take a while):",
        "# First, we need to create a clean build with profile generation",
        "make profile-gen-stamp",
    ]
    lines += [compile_line(o, "-fprofile-generate") for o in OBJECTS[:4]]
    lines += [
        "gcc -pthread -fprofile-generate -Xlinker -export-dynamic -o python Programs/python.o",
        "/usr/bin/install -c -m 644 ./Tools/gdb/libpython.py python-gdb.py",
        "./python -m test --pgo --timeout=1200 || true",
    ]
    lines += [f"0:00:0{i} load avg: 1.50 [ {i}/3] test_array" for i in (1, 2, 3)]
    lines += ["Rebuilding with profile guided optimizations:"]
    lines += [compile_line(o, "-fprofile-use -flto") for o in OBJECTS[4:]]
    lines += [
        "gcc -pthread -flto -fuse-linker-plugin -ffat-lto-objects -flto-partition=none "
        "-Xlinker -export-dynamic -o python Programs/python.o libpython3.13.a -ldl -lm",
        "The following modules are *disabled* in configure script:",
    ]
    return lines


def write_slowly(log: Path, lines: list[str], gate: threading.Event | None = None) -> None:
    """The build: appends its output to the log a line at a time, as make does."""
    with open(log, "a") as handle:
        for i, line in enumerate(lines):
            if gate is not None and i == 6:
                gate.wait(10)  # pause mid-compile so the test can look at the display
            handle.write(line + "\n")
            handle.flush()
            time.sleep(0.01)


def run_fake_build(
    progress: Progress, log: Path, gate: threading.Event | None = None
) -> Iterator[str]:
    """Runs the fake make under a progress step; yields once mid-build (when gated)."""
    log.write_text("$ ./configure\nchecking build system type... x86_64-pc-linux-gnu\n")
    with progress.step("make", "CPython 3.13.15 Debian 13 amd64 (release)") as step:
        writer = threading.Thread(target=write_slowly, args=(log, fake_pgo_lto_make(), gate))
        with step.follow(log, CPythonOutput(step, total=len(OBJECTS))):
            writer.start()
            if gate is not None:
                deadline = time.monotonic() + 10
                while step.completed < 3 and time.monotonic() < deadline:
                    time.sleep(0.05)
                yield "mid-build"
                gate.set()
            writer.join()
    yield "done"


def test_ci_log_has_one_timestamped_line_per_phase(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = Progress(out)
    assert not progress.interactive
    list(run_fake_build(progress, tmp_path / "build.log"))
    lines = out.getvalue().splitlines()
    stamp = r"\d\d:\d\d:\d\d "
    subject = r"make     CPython 3\.13\.15 Debian 13 amd64 \(release\)"
    expected = [
        rf"{stamp}==> {subject}$",
        rf"{stamp}--- {subject}: compile \(8 objects\)$",
        rf"{stamp}--- {subject}: link$",
        rf"{stamp}--- {subject}: PGO profile run$",
        rf"{stamp}--- {subject}: PGO profile run \(3 tests\)$",
        rf"{stamp}--- {subject}: PGO rebuild \(8 objects\)$",
        rf"{stamp}--- {subject}: LTO link$",
        rf"{stamp}<== {subject} done in \d+\.\ds$",
    ]
    assert len(lines) == len(expected), lines
    for line, pattern in zip(lines, expected, strict=True):
        assert re.match(pattern, line), (line, pattern)
    # the configure line written before the step began is not re-read
    assert "configure" not in out.getvalue()


def test_terminal_shows_the_running_step_its_phase_objects_and_elapsed(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = Progress(out, force_terminal=True, width=160)
    assert progress.interactive
    gate = threading.Event()
    steps = run_fake_build(progress, tmp_path / "build.log", gate)
    assert next(steps) == "mid-build"
    progress.refresh()
    mid = ANSI.sub("", out.getvalue())
    frame = mid.rsplit("\r", 1)[-1] if "\r" in mid else mid
    assert "make      CPython 3.13.15 Debian 13 amd64 (release)" in mid
    assert re.search(r"compile .*3/8 objects .*0:00:0\d", frame), frame
    assert "━" in mid  # the bar
    assert "<==" not in frame
    assert next(steps) == "done"
    text = ANSI.sub("", out.getvalue())
    assert re.search(r"<== make     CPython 3\.13\.15 Debian 13 amd64 \(release\) done in", text)
    # phases reached later were drawn, and no timestamped CI lines on a terminal
    assert not re.search(r"^\d\d:\d\d:\d\d ", text, re.M)


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    list(run_fake_build(Progress(out, quiet=True), tmp_path / "build.log"))
    assert out.getvalue() == ""


def test_phases_of_configure_and_install(tmp_path: Path) -> None:
    out = io.StringIO()
    progress = Progress(out)
    with progress.step("configure", "x") as step:
        feed = CPythonOutput(step)
        for line in ["checking for gcc... gcc", "checking whether C compiler works... yes"]:
            feed(line)
        assert (step.phase_name, step.completed) == ("configure", 2)
    with progress.step("install", "x") as step:
        feed = CPythonOutput(step)
        feed("/usr/bin/install -c -m 644 ./Lib/abc.py /build/stage/usr/local/lib/python3.13")
        feed("/usr/bin/install -c -m 644 ./Lib/ast.py /build/stage/usr/local/lib/python3.13")
        feed("Looking in links: /tmp/tmpabc")
        assert step.phase_name == "ensurepip"
    phases = [ln.split(": ", 1)[1] for ln in out.getvalue().splitlines() if " --- " in ln]
    assert phases == ["configure", "install", "ensurepip"]


def test_count_compiles_of_a_dry_run() -> None:
    dry = "\n".join(
        [
            "make profile-gen-stamp",
            *(compile_line(o) for o in OBJECTS),
            "gcc -pthread -o python Programs/python.o",
            "./python -E -c 'import sys'",
            "gcc -shared -o Modules/_ssl.cpython-313-x86_64-linux-gnu.so Modules/_ssl.o",
        ]
    )
    assert count_compiles(dry) == len(OBJECTS)


def test_a_parser_that_trips_never_fails_the_build(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_text("")
    seen: list[str] = []

    def feed(line: str) -> None:
        seen.append(line)
        raise ValueError("parser bug")

    with Progress(io.StringIO()).step("make", "x") as step, step.follow(log, feed):
        log.write_text("one\ntwo\n")
    assert seen == ["one"]  # fed until it broke, then left alone; the step ended normally
