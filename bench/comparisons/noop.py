"""No-op rebuild: ours against ``buildah bud --layers`` again."""

from __future__ import annotations

from ..harness import Figure, Outcome, ratio
from .common import (
    BASE_IMAGE,
    REF_IMAGE,
    TAG,
    Context,
    bud_argv,
    build_argv,
    context_dir,
    ensure_warm,
    smoke_reference,
)


def run_noop(ctx: Context) -> Outcome:
    runner = ctx.runner
    if ctx.smoke:
        return smoke_reference(ctx, runner)
    ensure_warm(ctx)
    ctxdir = context_dir(ctx, ctx.warm_cache)
    base = f"{BASE_IMAGE}:debian13-amd64"
    ours: list[float] = []
    ref: list[float] = []
    for _ in range(ctx.runs):
        ours.append(
            runner.run(
                build_argv(ctx, ctx.warm_cache, TAG, output=ctx.warm_cache / "oci"), "noop-ours"
            ).seconds
        )
        ref.append(
            runner.run(
                bud_argv(ctxdir, base, REF_IMAGE + ":amd64", ctx.profile), "noop-reference"
            ).seconds
        )
    return Outcome(
        key="4-noop",
        title="",
        status="measured",
        figures=(
            Figure("reference: `buildah bud --layers` again", "s", tuple(ref)),
            Figure(f"ours: `bink-python build {TAG}` again", "s", tuple(ours)),
        ),
        ratios=(ratio("reference / ours", ref, ours),),
        commands=tuple(runner.commands),
    )
