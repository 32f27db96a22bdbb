"""Interpreter speed and start-up: several CPython builds in one root filesystem.

    python -m bench.interpreters --base ROOTFS.tar --interp ours=RUNTIME.tar \\
        --interp reference=REF.tar --debian --runs 3 --startup-runs 40 --out RESULT.json

One container of the Debian 13 base (buildah, the same root filesystem for everyone):
Debian's own ``python3.13`` installed with apt (``--debian``; its maintainer scripts
byte-compile its stdlib as Debian's images have it), the first ``--interp`` runtime
unpacked at ``/`` (its ``/usr/local``, where it was built for), every other one unpacked
under ``/opt/<name>`` (CPython finds its stdlib relative to the executable). The container's
root is then used directly with bubblewrap:

- speed: pyperformance's benchmark scripts (bench/speed.py: pinned wheels, pyperf --fast),
  every interpreter per benchmark in turn, the order rotating from run to run;
- start-up: ``python3.13 -c pass`` and the import set of issue 13, as uid 10000 on a
  read-only root filesystem (a tmpfs /tmp), timed inside the sandbox by a driver
  (Debian's python3.13) around each child, interleaved, median of ``--startup-runs``.

Figures are written as JSON; RESULTS.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import speed
from .harness import Runner
from .interpreter_results import record
from .sandbox import bwrap_argv
from .speed import IMPORTS

DEBIAN = "/usr/bin/python3.13"

DRIVER = """
import json, subprocess, sys, time
pythons = json.loads(sys.argv[1]); runs = int(sys.argv[2]); code = sys.argv[3]
times = {name: [] for name in pythons}
for i in range(runs + 2):
    order = list(pythons.items())
    order = order[i % len(order):] + order[:i % len(order)]
    for name, python in order:
        start = time.perf_counter()
        subprocess.run([python, "-c", code], check=True)
        if i >= 2:  # two warm-up rounds (page cache)
            times[name].append(time.perf_counter() - start)
print(json.dumps(times))
"""


def sh(argv: list[str], **kw: object) -> str:
    print("+", " ".join(argv), file=sys.stderr, flush=True)
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kw).stdout  # type: ignore[call-overload, no-any-return]


#: (host directory, path inside) bound read-only over the root: build trees under test
BINDS: list[tuple[str, str]] = []


def bwrap(
    root: Path, *, user: bool, writable: bool, env: dict[str, str] | None = None
) -> list[str]:
    home = "/home/apps" if user else "/root"
    return bwrap_argv(root, writable=writable, user=user, home=home, env=env, binds=BINDS)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.interpreters")
    parser.add_argument("--base", type=Path, required=True, help="the base rootfs tar")
    parser.add_argument(
        "--interp",
        action="append",
        default=[],
        help="NAME=RUNTIME.tar, or NAME=DIR::EXE for an interpreter in a build tree (DIR is "
        "bound at /opt/NAME, EXE relative to it)",
    )
    parser.add_argument(
        "--bind", action="append", default=[], help="HOST=INSIDE: a directory bound read-only"
    )
    parser.add_argument("--debian", action="store_true", help="add Debian's python3.13")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=40)
    parser.add_argument("--benchmarks", default=",".join(speed.BENCHMARKS))
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--pyperf", default="--fast", help="pyperf's run options (default --fast)")
    parser.add_argument(
        "--reference-is-relink",
        action="store_true",
        help="the 'reference' runtime is ours relinked with the core in libpython3.13.so and "
        "without bytecode (the reference's layout), not a build of bench/reference/Dockerfile",
    )
    parser.add_argument("--record", type=Path, help="merge the outcomes into this results file")
    parser.add_argument(
        "--ours-profile", default="release", help="the runtime profile of 'ours' (for the labels)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/bink-bench/interpreters"))
    args = parser.parse_args()

    args.work.mkdir(parents=True, exist_ok=True)
    for item in args.bind:
        host, _, inside = item.partition("=")
        BINDS.append((host, inside))
    with interpreter_container(args.base, args.interp, debian=args.debian) as (ctr, pythons):
        wheels = speed.fetch_wheels(Runner(args.work / "logs"), args.work / "wheels")
        site = speed.unpack(wheels, Path(tempfile.mkdtemp(dir=args.work)) / "site")
        sh(["buildah", "copy", ctr, str(site), "/bench/site"])
        root = mount(ctr)
        result: dict[str, object] = {
            "pythons": pythons,
            "versions": versions(root, pythons),
            "load_start": list(_load()),
            "reference_is_relink": args.reference_is_relink,
            "ours_profile": args.ours_profile,
        }
        if not args.no_startup:
            result["startup"] = startup(root, pythons, args.startup_runs)
            print(json.dumps(result["startup"], indent=1), file=sys.stderr)
        if not args.no_speed:
            result["pyperf"] = args.pyperf
            result["speed"] = run_speed(
                root, pythons, args.benchmarks.split(","), args.runs, args.pyperf
            )
        result["load_end"] = list(_load())
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(summarise(result), indent=1))
        if args.record:
            command = "python -m bench.interpreters " + " ".join(sys.argv[1:])
            record(args.out, args.record, args.record.parent.parent / "RESULTS.md", [command])
    return 0


@contextmanager
def interpreter_container(
    base: Path, interps: Sequence[str], *, debian: bool, packages: Sequence[str] = ()
) -> Iterator[tuple[str, dict[str, str]]]:
    """A buildah container of the base rootfs ``base`` (a plain tar) with the interpreters:
    Debian's python3.13 installed with apt when ``debian`` (with ``packages``), the first of
    ``interps`` (``NAME=RUNTIME.tar``, or ``NAME=DIR::EXE`` for a build tree, added to
    :data:`BINDS`) unpacked at ``/``, every other one under ``/opt/NAME``. Yields the
    container and each interpreter's path inside; removes the container afterwards."""
    pythons: dict[str, str] = {}
    ctr = sh(["buildah", "from", "scratch"]).strip()
    try:
        sh(["buildah", "add", ctr, str(base), "/"])
        wanted = (*(("python3.13",) if debian else ()), *packages)
        if wanted:
            sh(speed.apt_install(ctr, wanted))
        if debian:
            pythons["debian"] = DEBIAN
        for i, spec in enumerate(interps):
            name, _, tar = spec.partition("=")
            dest = "/" if i == 0 else f"/opt/{name}"
            if "::" in tar:
                tree, _, exe = tar.partition("::")
                BINDS.append((tree, dest))
                pythons[name] = f"{dest}/{exe}"
                continue
            sh(["buildah", "add", ctr, tar, dest])
            pythons[name] = f"{'' if i == 0 else dest}/usr/local/bin/python3.13"
        yield ctr, pythons
    finally:  # buildah rm unmounts the container first, as bench.reference_runtime relies on
        subprocess.run(["buildah", "rm", ctr], check=False, capture_output=True)


def versions(root: Path, pythons: dict[str, str]) -> dict[str, str]:
    """Each interpreter's ``-VV`` (version, build date, compiler), run in ``root``."""
    return {
        n: sh([*bwrap(root, user=False, writable=False), p, "-VV"]).strip()
        for n, p in pythons.items()
    }


def mount(ctr: str) -> Path:
    """The root of the container ``ctr``, with a mount point for each of :data:`BINDS`."""
    root = Path(sh(["buildah", "mount", ctr]).strip())
    for _, inside in BINDS:
        (root / inside.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return root


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


def startup(root: Path, pythons: dict[str, str], runs: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per start, as uid 10000 on a read-only root, per code and interpreter."""
    out: dict[str, dict[str, list[float]]] = {}
    for label, code in (("pass", "pass"), ("imports", f"import {IMPORTS}")):
        text = sh(
            [
                *bwrap(root, user=True, writable=False),
                DEBIAN if "debian" in pythons else next(iter(pythons.values())),
                "-c",
                DRIVER,
                json.dumps(pythons),
                str(runs),
                code,
            ]
        )
        out[label] = json.loads(text.strip().splitlines()[-1])
    return out


def run_speed(
    root: Path, pythons: dict[str, str], names: list[str], runs: int, mode: str
) -> dict[str, dict[str, list[float]]]:
    per: dict[str, dict[str, list[float]]] = {n: {p: [] for p in pythons} for n in names}
    order = list(pythons)
    for run in range(runs):
        rotated = order[run % len(order) :] + order[: run % len(order)]
        for name in names:
            for who in rotated:
                cmd = speed.command(
                    pythons[who],
                    "/bench/site",
                    name,
                    "/tmp/bench-result.json",
                    smoke=False,
                    mode=mode,
                )
                started = time.monotonic()
                text = sh([*bwrap(root, user=False, writable=True), "sh", "-c", cmd])
                per[name][who].append(speed.mean_seconds(text))
                print(
                    f"{name} {who}: {per[name][who][-1] * 1e3:.2f} ms "
                    f"({time.monotonic() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return per


def summarise(result: dict[str, object]) -> dict[str, object]:
    """Medians, and per-run geometric means of ratios against every other interpreter."""
    summary: dict[str, object] = {}
    startup_data = result.get("startup")
    if isinstance(startup_data, dict):
        summary["startup_median_ms"] = {
            label: {n: round(statistics.median(v) * 1e3, 1) for n, v in per.items()}
            for label, per in startup_data.items()
        }
    speed_data = result.get("speed")
    if isinstance(speed_data, dict):
        names = list(speed_data)
        who = list(next(iter(speed_data.values())))
        runs = len(speed_data[names[0]][who[0]])
        summary["speed_median_ms"] = {
            n: {w: round(statistics.median(speed_data[n][w]) * 1e3, 3) for w in who} for n in names
        }
        geo: dict[str, list[float]] = {}
        for a in who:
            for b in who:
                if a == b:
                    continue
                geo[f"{b}/{a} (time ratio: >1 means {a} faster)"] = [
                    round(
                        statistics.geometric_mean(
                            speed_data[n][b][i] / speed_data[n][a][i] for n in names
                        ),
                        3,
                    )
                    for i in range(runs)
                ]
        summary["geometric_means_per_run"] = geo
    return summary


if __name__ == "__main__":
    shutil.which("bwrap") or sys.exit("needs bwrap")
    sys.exit(main())
