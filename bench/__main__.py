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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .comparisons.common import BENCH_DIR, Context
from .harness import (
    BenchError,
    Outcome,
    latest_results,
    load_results,
    machine,
    save_results,
    today,
)
from .registry import RUN_ORDER, Comparison
from .report import DEFAULT_WORK, write_outputs

DEFAULT_TEST_CACHE = Path("/var/tmp/bink-python-test-cache/store")
ORDER = tuple(c.name for c in RUN_ORDER)


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


def run_comparison(comparison: Comparison, ctx: Context) -> tuple[Outcome, bool]:
    """The comparison's outcome under its registered title, and whether its run failed
    (then it is not measured, the reason saying why)."""
    try:
        outcome, failed = comparison.runner(ctx), False
    except (BenchError, OSError) as exc:
        traceback.print_exc(file=sys.stderr)
        outcome = Outcome(comparison.key, "", "not measured", reason=f"the run failed: {exc}")
        failed = True
    return replace(outcome, title=comparison.title), failed


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
    for comparison in [c for c in RUN_ORDER if not args.only or c.name in args.only]:
        print(f"[bench] {comparison.title}", file=sys.stderr, flush=True)
        start_load = [round(x, 2) for x in os.getloadavg()]
        outcome, run_failed = run_comparison(comparison, ctx)
        failed += run_failed
        load = [round(x, 2) for x in os.getloadavg()]
        data = save_results(
            results,
            machine_info=mach,
            settings={**settings, "load_average_at_start": start_load, "load_average_at_end": load},
            outcomes=[outcome],
        )
        write_outputs(results, markdown, data)
        print(
            f"[bench] {comparison.name}: {outcome.status} "
            + json.dumps([f.to_json()["median"] for f in outcome.ratios]),
            file=sys.stderr,
            flush=True,
        )
    print(f"[bench] results: {results}\n[bench] summary: {markdown}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
