"""arm64: our cross-compiled runtime against the emulated reference."""

from __future__ import annotations

import shutil

from ..harness import Figure, Outcome, ratio
from .common import (
    BASE_IMAGE,
    REF_IMAGE,
    Context,
    bink_argv,
    bud_argv,
    context_dir,
    ensure_warm,
    find_base,
    import_image,
    maybe_base,
    rmi,
    runtime_argv,
)


def run_arm64(ctx: Context) -> Outcome:
    if ctx.smoke:
        return Outcome(
            "5-arm64", "", "not measured", reason="smoke mode: both sides compile CPython for arm64"
        )
    ensure_warm(ctx)
    runner = ctx.runner
    cache = ctx.work / "arm64-cache"
    shutil.rmtree(cache, ignore_errors=True)
    runner.run(["cp", "-a", ctx.warm_cache, cache], "prepare", record=False)
    if ctx.profile != "fast":  # the cross build's build Python: amd64 of the same profile
        runner.run(runtime_argv(ctx, cache, "amd64", "fast"), "prepare", record=False)
    ours = runner.run(runtime_argv(ctx, cache, "arm64", "fast", "--force"), "arm64-ours")
    base = f"{BASE_IMAGE}:debian13-arm64"
    rmi(runner, base, REF_IMAGE + ":arm64")
    stores = (cache, ctx.test_cache)
    rootfs = next((p for s in stores for p in maybe_base(s, "arm64")), None)
    if rootfs is None:
        runner.run(
            bink_argv(ctx, "base", "build", "--arch", "arm64", cache=cache), "prepare", record=False
        )
        rootfs = find_base(cache, "arm64")
    import_image(runner, rootfs, base, "arm64")
    ref = runner.run(
        bud_argv(
            context_dir(ctx, cache), base, REF_IMAGE + ":arm64", "fast", arch="arm64", no_cache=True
        ),
        "arm64-reference",
        cap=ctx.cap,
    )
    shutil.rmtree(cache)
    return Outcome(
        key="5-arm64",
        title="",
        status="measured",
        figures=(
            Figure(
                "reference: `buildah bud --platform linux/arm64` under qemu (fast)",
                "s",
                (ref.seconds,),
                ref.capped,
            ),
            Figure(
                "ours: `bink-python runtime build --arch arm64` cross-compiled (fast)",
                "s",
                (ours.seconds,),
            ),
        ),
        ratios=(ratio("reference / ours", [ref.seconds], [ours.seconds], lower_bound=ref.capped),),
        commands=tuple(runner.commands),
        reason=f"the reference hit the {ctx.cap:.0f} s cap and was stopped" if ref.capped else "",
        notes=(
            "one run (capped emulated build); ours is the runtime stage with `--force` "
            "(the arm64 cross build root included when not cached; assembly of an arm64 "
            "image adds seconds)",
        ),
    )
