"""Security rebuild: the base changed, Python did not."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..harness import Figure, Outcome, ratio
from .common import (
    BASE_IMAGE,
    EXTRA_PACKAGE,
    REF_IMAGE,
    REPO,
    TAG,
    Context,
    bud_argv,
    build_argv,
    context_dir,
    drop_bases_with,
    ensure_warm,
    find_base,
    import_image,
    rmi,
    stage_breakdown,
    warm_from_test_cache,
)


def security_argv(ctx: Context, cache: Path) -> list[str | Path]:
    """``bink-python build`` of the tag with the extra package in every base."""
    return [*build_argv(ctx, cache, TAG, output=cache / "oci"), "--extra-package", EXTRA_PACKAGE]


def run_security(ctx: Context) -> Outcome:
    if ctx.smoke:
        return Outcome(
            "3-security",
            "",
            "not measured",
            reason="smoke mode: the changed base is an mmdebstrap build (minutes)",
        )
    runner = ctx.runner
    warm_from_test_cache(ctx, runner)
    ensure_warm(ctx)
    ctxdir = context_dir(ctx, ctx.warm_cache)
    ours: list[float] = []
    ref: list[float] = []
    stages: list[str] = []
    for i in range(ctx.runs):
        cache = ctx.work / f"security-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        runner.run(["cp", "-a", ctx.warm_cache, cache], "prepare", record=False)
        drop_bases_with(cache, EXTRA_PACKAGE)
        done = runner.run(security_argv(ctx, cache), "security-ours", cwd=REPO)
        ours.append(done.seconds)
        stages.append(f"ours, run {i + 1}, stages: " + stage_breakdown(done.output))
        base = f"{BASE_IMAGE}:debian13-amd64-security"
        rmi(runner, base)
        import_image(runner, find_base(cache, "amd64", extra=(EXTRA_PACKAGE,)), base, "amd64")
        ref.append(
            runner.run(
                bud_argv(ctxdir, base, REF_IMAGE + ":amd64-security", ctx.profile),
                "security-reference",
            ).seconds
        )
        shutil.rmtree(cache)
    return Outcome(
        key="3-security",
        title="",
        status="measured",
        figures=(
            Figure(
                "reference: `buildah bud --layers`, new base (cache invalidated)", "s", tuple(ref)
            ),
            Figure(f"ours: `bink-python build {TAG}`, new base, runtime reused", "s", tuple(ours)),
        ),
        ratios=(ratio("reference / ours", ref, ours),),
        commands=tuple(runner.commands),
        notes=(
            f"the base changed by one added package ({EXTRA_PACKAGE}): `bink-python build "
            "--extra-package` adds it to every base",
            "ours includes rebuilding the base with mmdebstrap; the reference gets the new "
            "base for free (imported, untimed), as a pulled upstream image would be",
            *stages,
        ),
    )
