"""The reference's runtime as a tar, for ``bench.interpreters --interp reference=TAR``.

bench/reference/Dockerfile built with buildah (PROFILE=release: the docker-library flags,
PGO and LTO) FROM the Debian 13 base rootfs given, and its ``/usr/local`` (what the
Dockerfile's final stage copies from its build stage) written to a tar::

    python -m bench.reference_runtime --base ROOTFS.tar --out REF.tar [--profile release]

About 25 minutes of a 2-core machine for the release profile. The build's log is in
``--work``/logs (default: /var/tmp/bink-bench/reference-runtime).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .__main__ import DEFAULT_TEST_CACHE
from .comparisons.common import BASE_IMAGE, REF_IMAGE, Context, bud_argv, context_dir, import_image
from .harness import BenchError


def build(base: Path, out: Path, profile: str, work: Path) -> None:
    ctx = Context(
        work=work,
        smoke=False,
        runs=1,
        cap=0.0,
        profile=profile,
        test_cache=DEFAULT_TEST_CACHE,
        bink="",
    )
    runner = ctx.runner
    base_image = f"{BASE_IMAGE}:debian13-amd64"
    import_image(runner, base, base_image, "amd64")
    image = f"{REF_IMAGE}:amd64-{profile}"
    ctxdir = context_dir(ctx, DEFAULT_TEST_CACHE)
    runner.run(bud_argv(ctxdir, base_image, image, profile), f"reference-{profile}")
    ctr = runner.output(["buildah", "from", image]).strip()
    try:
        root = Path(runner.output(["buildah", "mount", ctr]).strip())
        out.parent.mkdir(parents=True, exist_ok=True)
        tar: list[str | Path] = ["tar", "--sort=name", "--numeric-owner", "-C", root, "-cf", out]
        runner.run([*tar, "usr/local"], f"reference-{profile}", record=False)
    finally:  # buildah rm unmounts the container first
        runner.run(["buildah", "rm", ctr], "cleanup", record=False, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_runtime")
    parser.add_argument("--base", type=Path, required=True, help="the Debian 13 base rootfs tar")
    parser.add_argument("--out", type=Path, required=True, help="the runtime tar to write")
    parser.add_argument("--profile", choices=("release", "fast"), default="release")
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/bink-bench/reference-runtime"))
    args = parser.parse_args(argv)
    try:
        build(args.base, args.out, args.profile, args.work)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
