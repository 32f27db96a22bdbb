"""Fault injection: real signals at measured points of a real `build`, and concurrent writers.

The family is the offline example (3.13 and 3.13-distroless, CPython 3.13.15, fast
profile) for amd64, with bases and runtimes taken from the shared test cache (hard
links into a private cache, so nothing here can damage the shared one). Every round
builds a *new* state (another VCS revision, so other labels and digests) and is
killed at a point chosen as a fraction of a measured reference build of its kind
(layers compressed anew, or layers from the cache), so that every round hits a build
still running:

* SIGTERM: the build must exit within its grace, and no process of the build may
  survive (found by an environment token, by command line or by working directory);
* SIGKILL: whatever still runs is reported and stopped (nothing can catch SIGKILL);

then, for both: ``cache verify`` finds no corrupt entry, ``dist/oci`` is either
byte-for-byte the previous ``index.json`` or the new state complete (every ref of
the new revision, every blob present with the right digest), and the next build
succeeds. Then: builds racing ``cache prune`` and a second build into one layout; and a
SIGTERM while the gzip worker compresses a layer (exit 143 within 2 s, same digests next).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bink_python.host.proc import descendants
from bink_python.oci.blobs import blob_ok
from bink_python.oci.layout import Layout
from tests.support.runtimes import TEST_EPOCH

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "offline"
ROUNDS = int(os.environ.get("BINK_PYTHON_FAULT_ROUNDS", "12"))
RACE_ROUNDS = int(os.environ.get("BINK_PYTHON_RACE_ROUNDS", "6"))
SEED = int(os.environ.get("BINK_PYTHON_FAULT_SEED", "16"))
#: The tag the faults hit: the distroless one alone keeps a round short (its regular base
#: is built as its parent all the same); every child kind still runs (mmdebstrap aside:
#: bases are cached), with verification in the reference and killed builds.
TAG = "3.13-distroless"
REFS = ("3.13-distroless", "3.13.15-distroless")


def _env(cache: Path, token: str, revision: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "BINK_PYTHON_CACHE": str(cache),
            "SOURCE_DATE_EPOCH": str(TEST_EPOCH),
            "GITHUB_SHA": revision,
            "BINK_FAULT_TOKEN": token,
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        }
    )
    return env


@dataclass
class Family:
    config: Path
    cache: Path  # private cache: bases, runtimes, inputs hard-linked from the shared one
    root: Path

    def argv(self, output: Path, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bink_python",
            "build",
            TAG,
            "--config",
            str(self.config),
            "--profile",
            "fast",
            "--arch",
            "amd64",
            "--output",
            str(output),
            "--quiet",
            *extra,
        ]

    def start(self, output: Path, token: str, revision: str, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(output, *extra),
            env=_env(self.cache, token, revision),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.root,
        )

    def build(self, output: Path, revision: str, *extra: str) -> float:
        start = time.monotonic()
        proc = self.start(output, f"ok-{revision}", revision, *extra)
        out, err = proc.communicate(timeout=1800)
        assert proc.returncode == 0, f"build failed:\n{out[-2000:]}\n{err[-4000:]}"
        return time.monotonic() - start

    def cache_verify(self) -> None:
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "bink_python", "cache", "verify"),
                *("--config", str(self.config), "--cache-dir", str(self.cache)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"corrupt cache entry: {proc.stderr}"

    def drop_layers(self) -> None:
        """Forget the compressed layers, so the next build compresses again (real work)."""
        for kind in ("gzip-layers", "files-layers"):
            shutil.rmtree(self.cache / kind, ignore_errors=True)


@pytest.fixture(scope="module")
def family(test_cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Family:
    """The offline example built once through the shared store; a private cache linked to it."""
    shared = test_cache_root / "store"
    out = tmp_path_factory.mktemp("faults")
    env = dict(os.environ)
    env.update(
        {
            "BINK_PYTHON_CACHE": str(shared),
            "SOURCE_DATE_EPOCH": str(TEST_EPOCH),
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        }
    )
    # examples/offline/build.sh without its final verify of both arches: amd64 only here
    config = out / "seed" / "config"
    config.mkdir(parents=True)
    for name in ("images.toml", "images.lock"):
        shutil.copy(EXAMPLE / name, config / name)
    source = EXAMPLE / "linkerd-await-standin.c"
    for arch, compiler in (("amd64", "gcc"), ("arm64", "aarch64-linux-gnu-gcc")):
        binary = out / f"linkerd-await-{arch}"
        subprocess.run([compiler, "-static", "-O2", "-o", str(binary), str(source)], check=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "bink_python", "cache", "add"),
                *("--config", str(config / "images.toml")),
                *("--for", f"linkerd-await:0.3.3:{arch}", str(binary)),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    seed = Family(config / "images.toml", shared, out)
    seed.build(out / "seed" / "oci", "seed", "--no-verify")
    cache = out / "cache"
    for kind in ("bases", "runtimes", "sha256"):
        (cache / kind).mkdir(parents=True)
        for entry in (shared / kind).iterdir():
            if entry.name.startswith("."):
                continue
            dest = cache / kind / entry.name
            if entry.is_dir():
                shutil.copytree(entry, dest, copy_function=os.link)
            else:
                os.link(entry, dest)
    return Family(config / "images.toml", cache, out)


# -- what the test observes ------------------------------------------------------------------


def _survivors(token: str, paths: tuple[Path, ...]) -> list[str]:
    """Processes of a build: its environment token, or a command line/cwd under ``paths``."""
    found = []
    needles = [str(p) for p in paths]
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        base = Path("/proc") / entry
        try:
            environ = (base / "environ").read_bytes()
            cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (base / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] == "Z":
            continue
        try:
            cwd = os.readlink(base / "cwd")
        except OSError:
            cwd = ""
        if (
            f"BINK_FAULT_TOKEN={token}".encode() in environ.split(b"\0")
            or any(n in cmdline for n in needles)
            or any(cwd.startswith(n) for n in needles)
        ):
            found.append(f"{entry}: {cmdline[:160]}")
    return found


def _stop_survivors(token: str, paths: tuple[Path, ...]) -> None:
    for line in _survivors(token, paths):
        pid = int(line.split(":", 1)[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _state(layout: Path) -> tuple[bytes | None, str | None]:
    """(index.json bytes, the revision every tag names) after checking the layout whole.

    Raises AssertionError on any inconsistency: a ref whose blobs are missing or corrupt,
    or tags at different revisions (half a promotion).
    """
    index = layout / "index.json"
    if not index.exists():
        return None, None
    raw = index.read_bytes()
    out = Layout(layout)
    refs = out.refs()
    revisions = set()
    for name, desc in refs.items():
        for blob in out.reachable(desc):
            assert blob_ok(out.blob_path(blob.digest), blob.digest, blob.size), (name, blob)
        if name in REFS:
            data = json.loads(out.read_blob(desc.digest))
            revisions.add(data["annotations"]["org.opencontainers.image.revision"])
    assert set(REFS) <= set(refs), sorted(refs)
    assert len(revisions) == 1, revisions  # every tag at one complete state
    return raw, revisions.pop()


def _stderr_after(proc: subprocess.Popen[str], sig: signal.Signals, limit: float, what: str) -> str:
    """The stderr of ``proc`` once it exits after ``sig``; fails if it runs ``limit`` s more."""
    try:
        return proc.communicate(timeout=limit)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        err = proc.communicate()[1]
        pytest.fail(f"{what}: build still running {limit:.0f} s after {sig.name}: {err[-2000:]}")


def _blob_buffers() -> set[Path]:
    """What buildah and skopeo buffer image blobs in (``storage*`` in the temporary dirs)."""
    roots = {Path("/var/tmp"), Path(tempfile.gettempdir())}
    return {p for root in roots for p in root.glob("storage[0-9]*")}


def _mounts_below(path: Path) -> list[str]:
    prefix = str(path)
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [ln.split()[4] for ln in lines if ln.split()[4].startswith(prefix)]


# -- the tests ---------------------------------------------------------------------------------


def test_kill_at_measured_points(family: Family) -> None:
    output = family.root / "dist" / "oci"
    # the reference builds, verification on (the expensive, child-heavy part): one that
    # compresses every layer again, one that finds them in the cache
    family.drop_layers()
    reference = {True: family.build(output, "reference-cold")}
    reference[False] = family.build(output, "reference")
    _state(output)
    print(f"reference builds {reference[True]:.1f}s, {reference[False]:.1f}s", flush=True)
    buffers = _blob_buffers()
    rng = random.Random(SEED)
    # each kind of build is cut at ROUNDS / 2 points spread over its whole length, by
    # SIGTERM and SIGKILL in turn (the kinds start with different signals)
    half = max(ROUNDS // 2, 1)
    points = [
        (
            i % 2 == 0,
            (i // 2 + rng.random()) / half,
            signal.SIGTERM if (i // 2 + i % 2) % 2 == 0 else signal.SIGKILL,
        )
        for i in range(ROUNDS)
    ]
    rng.shuffle(points)
    report = []
    started = time.monotonic()
    for i, (cold, fraction, sig) in enumerate(points):
        if cold:
            family.drop_layers()
        before, _ = _state(output)
        revision = f"fault-{i}"
        token = f"round-{i}-{os.getpid()}"
        delay = fraction * reference[cold]
        proc = family.start(output, token, revision)
        time.sleep(delay)
        proc.send_signal(sig)
        err = _stderr_after(proc, sig, 120, f"round {i}")
        watched = (family.cache, output.parent)
        time.sleep(0.5)
        survivors = _survivors(token, watched)
        if sig == signal.SIGTERM:
            assert survivors == [], f"round {i} ({delay:.1f}s, SIGTERM): {survivors}"
            assert proc.returncode in (0, 143), (proc.returncode, err[-2000:])
            assert "Traceback" not in err
        else:
            _stop_survivors(token, watched)
        assert _mounts_below(family.root) == [], f"round {i}: mounts left"
        family.cache_verify()
        after, seen_revision = _state(output)
        assert after == before or seen_revision == revision, f"round {i}: {seen_revision}"
        family.build(output, f"next-{i}", "--no-verify")
        assert _state(output)[1] == f"next-{i}"
        report.append(
            f"{i:2d} {sig.name:7s} at {delay:5.1f}s ({fraction:4.0%} of a "
            f"{'cold' if cold else 'warm'} build) exit {proc.returncode:4d} "
            f"layout {'new' if after != before else 'old'} survivors {len(survivors)}"
        )
        print(f"fault {report[-1]}", flush=True)  # shown with -s
    assert _blob_buffers() == buffers, "a stopped build left image blob buffers behind"
    print(f"{ROUNDS} faults in {time.monotonic() - started:.0f}s")


def test_concurrent_builds_and_prune(family: Family) -> None:
    output = family.root / "race" / "oci"
    family.build(output, "race-start", "--no-verify")
    prune = [
        sys.executable,
        "-m",
        "bink_python",
        "cache",
        "prune",
        "--config",
        str(family.config),
        "--cache-dir",
        str(family.cache),
        "--max-size",
        "0",  # everything the family does not need, as aggressively as possible
    ]
    for i in range(RACE_ROUNDS):
        family.drop_layers()
        one = family.start(output, f"race-a-{i}", f"race-a-{i}", "--no-verify")
        two = family.start(output, f"race-b-{i}", f"race-b-{i}", "--no-verify")
        pruned = 0
        while one.poll() is None or two.poll() is None:
            result = subprocess.run(prune, capture_output=True, text=True, check=False)
            assert result.returncode == 0, result.stderr
            pruned += 1
        for proc in (one, two):
            _, err = proc.communicate()
            assert proc.returncode == 0, f"round {i}: {err[-3000:]}"
        _, revision = _state(output)
        assert revision in (f"race-a-{i}", f"race-b-{i}"), revision
        assert pruned > 0
        family.cache_verify()
        print(f"race {i}: layout at {revision}, {pruned} prunes meanwhile", flush=True)
    Layout(output).prune()
    _state(output)


def _gzip_worker(build: subprocess.Popen[str], timeout: float) -> int:
    """The pid of the build's gzip worker (its command line runs libdeflate's
    ``gzip_compress``), polled every 20 ms; fails if the build ends or ``timeout`` passes
    first."""
    deadline = time.monotonic() + timeout
    while build.poll() is None and time.monotonic() < deadline:
        for pid in descendants(build.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"deflate.gzip_compress" in cmdline:
                return pid
        time.sleep(0.02)
    build.kill()
    _, err = build.communicate()
    pytest.fail(f"no gzip worker seen (build exit {build.returncode}): {err[-2000:]}")


def _digests(layout: Path) -> dict[str, str]:
    return {name: desc.digest for name, desc in Layout(layout).refs().items() if name in REFS}


def _link_layers(shared: Path, cache: Path) -> None:
    """Hard-link the shared store's compressed layers (the seed build's) into ``cache``."""
    for kind in ("gzip-layers", "files-layers"):
        for entry in sorted((shared / kind).iterdir()) if (shared / kind).is_dir() else []:
            dest = cache / kind / entry.name
            if entry.is_dir() and not entry.name.startswith(".") and not dest.exists():
                shutil.copytree(entry, dest, copy_function=os.link)


def test_sigterm_while_a_layer_is_gzipped(family: Family, test_cache_root: Path) -> None:
    """SIGTERM while the gzip worker runs: the build stops it, unwinds within 2 s with 143,
    and the next build of the same revision gives the digests of an uninterrupted one."""
    started = time.monotonic()
    output = family.root / "gzip-term" / "oci"
    # the uninterrupted build of the revision that the stopped build and the next one make,
    # from the seed build's layers (compressed uninterrupted): quick
    _link_layers(test_cache_root / "store", family.cache)
    reference_time = family.build(output, "gzip-term", "--no-verify")
    before, _ = _state(output)
    reference = _digests(output)
    family.drop_layers()
    token = f"gzip-term-{os.getpid()}"
    build = family.start(output, token, "gzip-term", "--no-verify")
    worker = _gzip_worker(build, timeout=300)
    signalled = time.monotonic()
    build.send_signal(signal.SIGTERM)
    err = _stderr_after(build, signal.SIGTERM, 60, "the gzip round")
    stopped = time.monotonic() - signalled
    assert build.returncode == 143, (build.returncode, err[-2000:])
    assert stopped < 2.0, f"exit {stopped:.2f}s after SIGTERM"
    assert "Traceback" not in err
    with contextlib.suppress(OSError):  # gone, or a zombie with no command line
        assert b"gzip_compress" not in Path(f"/proc/{worker}/cmdline").read_bytes()
    assert _survivors(token, (family.cache, output.parent)) == []
    assert _mounts_below(family.root) == []
    family.cache_verify()
    after, revision = _state(output)
    assert after == before or revision == "gzip-term", revision
    next_time = family.build(output, "gzip-term", "--no-verify")
    assert _digests(output) == reference
    print(
        f"gzip SIGTERM: exit 143 {stopped:.2f}s after the signal; builds {reference_time:.0f}s "
        f"and {next_time:.0f}s; test {time.monotonic() - started:.0f}s"
    )
