"""Cold build of one tag with empty caches: ours against the reference."""

from __future__ import annotations

import shutil

from ..harness import Figure, Outcome, ratio
from .common import (
    BASE_IMAGE,
    REF_IMAGE,
    TAG,
    Context,
    bud_argv,
    build_argv,
    context_dir,
    find_base,
    import_image,
    rmi,
    seed_cache,
    stage_breakdown,
)


def run_cold(ctx: Context) -> Outcome:
    if ctx.smoke:
        return Outcome(
            "2-cold",
            "",
            "not measured",
            reason="smoke mode: a cold build compiles CPython (minutes); "
            "the buildah path is exercised by the no-op comparison",
        )
    runner = ctx.runner
    ours: list[float] = []
    ref: list[float] = []
    stages: list[str] = []
    for i in range(ctx.runs):
        cache = ctx.work / f"cold-{i}"
        shutil.rmtree(cache, ignore_errors=True)
        seed_cache(ctx, runner, cache)
        done = runner.run(build_argv(ctx, cache, TAG, output=cache / "oci"), "cold-ours")
        ours.append(done.seconds)
        stages.append(
            f"ours, run {i + 1}, stages (base and runtime run concurrently): "
            + stage_breakdown(done.output)
        )
        # the reference starts FROM the same base, imported as if pulled (not timed)
        base = f"{BASE_IMAGE}:debian13-amd64"
        rmi(runner, REF_IMAGE + ":amd64", base)
        import_image(runner, find_base(cache, "amd64"), base, "amd64")
        ctxdir = context_dir(ctx, cache)
        ref.append(
            runner.run(
                bud_argv(ctxdir, base, REF_IMAGE + ":amd64", ctx.profile, no_cache=True),
                "cold-reference",
            ).seconds
        )
        if i < ctx.runs - 1:
            shutil.rmtree(cache)
        else:
            shutil.rmtree(ctx.warm_cache, ignore_errors=True)
            cache.rename(ctx.warm_cache)
    return Outcome(
        key="2-cold",
        title="",
        status="measured",
        figures=(
            Figure(f"reference: `buildah bud --no-cache` ({ctx.profile})", "s", tuple(ref)),
            Figure(
                f"ours: `bink-python build {TAG} --arch amd64` ({ctx.profile}), empty cache",
                "s",
                tuple(ours),
            ),
        ),
        ratios=(ratio("reference / ours", ref, ours),),
        commands=tuple(runner.commands),
        notes=(
            "ours includes fetching CPython through the Debian mirror, building the base "
            "with mmdebstrap, the build root, the compile and assembly (not verification: "
            "`--no-verify`, the reference verifies nothing either)",
            "the reference starts FROM the same Debian 13 base already in buildah storage "
            "(importing it stands in for a pull and is not timed)",
            *stages,
        ),
    )
