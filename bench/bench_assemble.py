"""Benchmark: assembling one image from a ~100 MB layer vs ``tar c | gzip -6``.

Usage: python bench/bench_assemble.py [DIR]   (default /usr/lib/gcc, about 120 MB)

Reports, in seconds: writing the deterministic tar (tarball.write_tree_tar_file),
assembling the image cold (libdeflate gzip of the layer + blobs + config + manifest into a
fresh layout), assembling it warm (compressed layer reused from the store, new
layout), ``tar c DIR | gzip -6`` and ``gzip -6`` of our tar, plus sizes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bink_python.image.assemble import ImageSpec, LayerSource, build_image, rfc3339
from bink_python.oci import tarball
from bink_python.oci.layout import Layout
from bink_python.store.store import Store

EPOCH = 1_767_225_600
T = TypeVar("T")


def timed(func: Callable[[], T]) -> tuple[float, T]:
    start = time.monotonic()
    result = func()
    return time.monotonic() - start, result


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/lib/gcc")
    with tempfile.TemporaryDirectory(prefix="bench-assemble-", dir="/var/tmp") as tmp_name:
        tmp = Path(tmp_name)
        tar = tmp / "layer.tar"
        t_tar, (sha, size) = timed(lambda: tarball.write_tree_tar_file(src, tar, epoch=EPOCH))
        layer = LayerSource(tar, "sha256:" + sha, "bench")
        spec = ImageSpec("amd64", (layer,), ("LANG=C.UTF-8",), ("python3",), "", {}, rfc3339(EPOCH))
        store = Store(tmp / "store")
        t_cold, image = timed(lambda: build_image(spec, Layout(tmp / "oci1"), store))
        t_warm, _ = timed(lambda: build_image(spec, Layout(tmp / "oci2"), store))
        t_shell, _ = timed(
            lambda: subprocess.run(
                f"tar c -C {src} . | gzip -6 > {tmp}/shell.tar.gz", shell=True, check=True
            )
        )
        t_gzip, _ = timed(
            lambda: subprocess.run(f"gzip -6 < {tar} > {tmp}/ours.gz", shell=True, check=True)
        )
        shell_size = (tmp / "shell.tar.gz").stat().st_size
        print(
            json.dumps(
                {
                    "source": str(src),
                    "tar_bytes": size,
                    "write_tree_tar_s": round(t_tar, 2),
                    "assemble_cold_s": round(t_cold, 2),
                    "assemble_warm_s": round(t_warm, 2),
                    "tar_c_pipe_gzip_6_s": round(t_shell, 2),
                    "gzip_6_of_our_tar_s": round(t_gzip, 2),
                    "our_layer_gzip_bytes": image.layers[0].size,
                    "tar_c_gzip_6_bytes": shell_size,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
