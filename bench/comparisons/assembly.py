"""Assembly overhead: one image against ``tar c | gzip -6``."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bink_python.image.assemble import ImageSpec, LayerSource, build_image, rfc3339
from bink_python.oci import tarball
from bink_python.oci.layout import Layout
from bink_python.store.store import Store

from ..harness import Figure, Outcome, ratio
from .common import (
    BENCH_DIR,
    EPOCH,
    Context,
)


def run_assembly(ctx: Context) -> Outcome:
    """Assembling one image (compress + blobs + manifest) vs ``tar c | gzip -6``."""
    runner = ctx.runner
    src = BENCH_DIR.parent / "src" if ctx.smoke else Path("/usr/lib/gcc")
    ours: list[float] = []
    shell: list[float] = []
    warm: list[float] = []
    sizes: dict[str, float] = {}
    for i in range(ctx.runs):
        tmp = ctx.work / f"assembly-{i}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        start = time.monotonic()
        sha, size = tarball.write_tree_tar_file(src, tmp / "layer.tar", epoch=EPOCH)
        layer = LayerSource(tmp / "layer.tar", "sha256:" + sha, "bench")
        spec = ImageSpec("amd64", (layer,), ("LANG=C.UTF-8",), ("python3",), "", {}, rfc3339(EPOCH))
        store = Store(tmp / "store")
        image = build_image(spec, Layout(tmp / "oci"), store)
        ours.append(time.monotonic() - start)
        Layout(tmp / "oci").set_refs({"smoke": image.descriptor})
        start = time.monotonic()
        build_image(spec, Layout(tmp / "oci-warm"), store)
        warm.append(time.monotonic() - start)
        shell.append(
            runner.run(
                ["sh", "-c", f"tar c -C {src} . | gzip -6 > {tmp}/shell.tgz"], "assembly"
            ).seconds
        )
        sizes = {
            "tar": size / 1e6,
            "ours": image.layers[0].size / 1e6,
            "shell": (tmp / "shell.tgz").stat().st_size / 1e6,
        }
        if not ctx.smoke:
            shutil.rmtree(tmp)
    return Outcome(
        key="8-assembly",
        title="",
        status="smoke" if ctx.smoke else "measured",
        figures=(
            Figure(
                "ours: deterministic tar + assemble (gzip by libdeflate -12, blobs, config, "
                "manifest)",
                "s",
                tuple(ours),
            ),
            Figure("ours: assemble again, compressed layer from the store", "s", tuple(warm)),
            Figure("floor: `tar c DIR | gzip -6`", "s", tuple(shell)),
            Figure("uncompressed tar", "MB", (sizes["tar"],)),
            Figure("ours: gzip layer", "MB", (sizes["ours"],)),
            Figure("floor: tar.gz", "MB", (sizes["shell"],)),
        ),
        ratios=(ratio("overhead: ours / floor", ours, shell),),
        commands=(f"python -m bench --only assembly --runs {ctx.runs}", *runner.commands),
        notes=(
            f"file set: {src} (the same directory for both)",
            "ours compresses with libdeflate at level 12 (compression.GZIP_LEVEL): smaller "
            "layers than gzip -6, bought with compression time paid once per layer (the "
            "store keeps the blob; 'assemble again' is that case)",
        ),
    )
