"""``python -m bench``: run the comparisons, write bench/results/<date>.json and RESULTS.md.

    python -m bench [--smoke] [--only NAME ...] [--runs N] [--cap-seconds S]
                    [--profile fast|release] [--work DIR]

Each comparison's outcome is merged into the results file of the day as soon as it
finishes, and RESULTS.md is regenerated from that file, so an interrupted run keeps
what completed. ``--smoke`` runs every comparison's code path on tiny inputs (or
skips it with the reason) in a scratch directory and writes its results there,
never into bench/results (no timing claims).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .comparisons import BENCH_DIR, COMPARISONS, KEYS, Context
from .harness import (
    BenchError,
    Outcome,
    latest_results,
    load_results,
    machine,
    render_markdown,
    save_results,
    today,
)

DEFAULT_WORK = Path("/var/tmp/bink-bench/work")
DEFAULT_TEST_CACHE = Path("/var/tmp/bink-python-test-cache/store")
ORDER = ("assembly", "cold", "noop", "security", "sizes", "arm64", "speed")

PREAMBLE = """
Measured by `python -m bench` (bench/__main__.py) on the project's development machine
(2 cores). The runs were made one after another with nothing else running on the machine
but the harness; each comparison records the load average at its start and end. Ratios are
taken per run pair (ours and the reference run back to back). The reference approach is
bench/reference/Dockerfile (docker-library style, multi-stage, CPython compiled inside
`buildah bud --isolation chroot`), FROM the project's own Debian 13 base.

Reproduce this file (from the repository root, with the venv's `bink-python` on PATH):

```sh
python -m bench --only cold security --runs 2                  # 2, 3 (and the reference image)
python -m bench --only noop sizes assembly speed --runs 3      # 4, 6, 8, 7
python -m bench --only arm64 --runs 1 --cap-seconds 900        # 5
python -m bench --smoke                                        # CI smoke mode: code paths only
python -m bench --render-only                                  # RESULTS.md from the results file
```

Comparisons 7, 9, 10, 12, 13 and 15 put several interpreters in one root filesystem and are
measured by `python -m bench.interpreters` (its exact command is in each section; the
one-change-at-a-time runtimes are release builds of a recipe with that one change, or made
from a build's own objects by `python -m bench.variants`); their `reference=` runtime is
made by `python -m bench.reference_runtime --base ROOTFS.tar --out REF.tar` (the reference
Dockerfile at `PROFILE=release`, its `/usr/local` as a tar).
Comparison 11 reads the wall times of two finished release builds (one per arch) from
their cache entries' records: `python -m bench.release_builds AMD64_ENTRY ARM64_ENTRY`.
Comparison 14 counts instructions under callgrind in the same kind of root filesystem:
`python -m bench.instructions` (its command is in its section).

Each section below lists the exact commands its run executed (untimed preparation such as
seeding the stand-in linkerd-await binaries or importing a base into buildah is left out).

## 1. The reference approach

`bench/reference/Dockerfile`: stage `build` FROM the Debian 13 base (the project's own
regular base, imported into buildah storage as a one-layer image: the stand-in for
`FROM debian:trixie-slim`), build dependencies with apt (docker-library/python's list, no
Tk), the verified CPython 3.13.15 tarball COPY'd from the build context (sha256 checked),
configure with the flags of `src/bink_python/runtime/plan.py` (`--enable-shared`,
`--enable-loadable-sqlite-extensions`, `--with-ensurepip`, `--with-system-expat`,
`--enable-option-checking=fatal`; `release` adds `--enable-optimizations --with-lto`;
dpkg-buildflags CFLAGS without Debian's `-O2`, so CPython's `-O3` holds, and LDFLAGS, plus
frame pointers and rpath `$ORIGIN/../lib`), `make -j2`,
install, the same cleanup and strip; a runtime stage FROM the same base with the runtime
libraries (apt) and `COPY --from=build /usr/local`. Built with
`buildah bud --isolation chroot --network host --layers` (`--no-cache` for cold builds,
`--platform linux/arm64` under qemu-user for comparison 5).
"""


def titles() -> dict[str, str]:
    ordered = sorted(KEYS.items(), key=lambda item: int(item[0].split("-")[0]))
    return {key: COMPARISONS[name][0] for key, name in ordered}


def write_outputs(results: Path, markdown: Path, data: Mapping[str, Any]) -> None:
    rel = os.path.relpath(results, markdown.parent)
    markdown.write_text(render_markdown(data, titles=titles(), preamble=PREAMBLE, results_file=rel))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="tiny inputs, every code path, no timing claims (CI)"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ORDER,
        metavar="NAME",
        help=f"only these comparisons ({', '.join(ORDER)})",
    )
    parser.add_argument("--runs", type=int, default=1, metavar="N", help="runs per figure (1)")
    parser.add_argument(
        "--cap-seconds",
        type=float,
        default=1200.0,
        metavar="S",
        help="time cap of the emulated arm64 build (1200)",
    )
    parser.add_argument(
        "--profile",
        choices=("fast", "release"),
        default="fast",
        help="runtime profile of the build comparisons (fast)",
    )
    parser.add_argument(
        "--speed-profile",
        choices=("release", "fast"),
        default="release",
        help="runtime profile of the speed comparison (release: the claim)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        metavar="DIR",
        help=f"scratch directory (default {DEFAULT_WORK}; smoke: a temp dir)",
    )
    parser.add_argument(
        "--test-cache",
        type=Path,
        default=DEFAULT_TEST_CACHE,
        metavar="DIR",
        help="a warm store whose bases may be reused (never modified)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only regenerate RESULTS.md from the newest results file",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        metavar="DIR",
        help="where <date>.json and RESULTS.md go (default bench/; smoke: the scratch directory)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bink = shutil.which("bink-python") or shutil.which(
        "bink-python", path=str(Path(sys.executable).parent)
    )
    if bink is None:
        print(
            "error: bink-python not found: install the project (pip install -e .) or put "
            "its venv on PATH",
            file=sys.stderr,
        )
        return 2
    temp = None
    if args.work is None and args.smoke:
        temp = tempfile.mkdtemp(prefix="bink-bench-smoke-", dir="/var/tmp")
    work = Path(temp) if temp else (args.work or DEFAULT_WORK)
    work.mkdir(parents=True, exist_ok=True)
    out_dir = args.results_dir or (work if args.smoke else BENCH_DIR)
    results = out_dir / "results" / f"{today()}.json"
    markdown = out_dir / "RESULTS.md"
    if args.render_only:
        # the newest results file: a day without a run has none of its own
        shown = latest_results(results.parent) or results
        write_outputs(shown, markdown, load_results(shown))
        return 0
    ctx = Context(
        work=work.resolve(),
        smoke=args.smoke,
        runs=1 if args.smoke else args.runs,
        cap=args.cap_seconds,
        profile=args.profile,
        test_cache=args.test_cache,
        bink=bink,
        speed_profile=args.speed_profile,
    )
    settings = {
        "runs": ctx.runs,
        "profile": ctx.profile,
        "cap_seconds": ctx.cap,
        "smoke": ctx.smoke,
        "speed_profile": ctx.speed_profile,
    }
    mach = machine()
    failed = 0
    names = [n for n in ORDER if not args.only or n in args.only]
    key_of = {name: key for key, name in KEYS.items()}
    for name in names:
        title, func = COMPARISONS[name]
        print(f"[bench] {title}", file=sys.stderr, flush=True)
        start_load = [round(x, 2) for x in os.getloadavg()]
        try:
            outcome = func(ctx)
        except (BenchError, OSError) as exc:
            failed += 1
            traceback.print_exc(file=sys.stderr)
            outcome = Outcome(key_of[name], "", "not measured", reason=f"the run failed: {exc}")
        outcome = Outcome(
            outcome.key,
            title,
            outcome.status,
            outcome.figures,
            outcome.ratios,
            outcome.commands,
            outcome.notes,
            outcome.reason,
        )
        load = [round(x, 2) for x in os.getloadavg()]
        data = save_results(
            results,
            machine_info=mach,
            settings={**settings, "load_average_at_start": start_load, "load_average_at_end": load},
            outcomes=[outcome],
        )
        write_outputs(results, markdown, data)
        print(
            f"[bench] {name}: {outcome.status} "
            + json.dumps([f.to_json()["median"] for f in outcome.ratios]),
            file=sys.stderr,
            flush=True,
        )
    print(f"[bench] results: {results}\n[bench] summary: {markdown}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
