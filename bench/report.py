"""RESULTS.md: the preamble, every registered comparison's section, repository-relative paths.

The commands a run records name its interpreter by absolute path (the venv of the checkout
it ran in); RESULTS.md shows such paths relative to the repository, so the file does not
depend on where the repository was on the machine that ran the comparisons.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .harness import render_markdown
from .registry import titles

REPO = Path(__file__).resolve().parents[1]

#: An absolute path into a checkout's venv (``/any/checkout/.venv/bin/python``): the
#: checkout's own location is dropped.
_VENV_PATH = re.compile(r"(?<![\w.-])/(?:[\w.+-]+/)*?(?=\.venv/)")

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
configure with the flags of `src/bink_python/runtime/runtime.py` (`--enable-shared`,
`--enable-loadable-sqlite-extensions`, `--with-ensurepip`, `--with-system-expat`,
`--enable-option-checking=fatal`; `release` adds `--enable-optimizations --with-lto`;
dpkg-buildflags CFLAGS without Debian's `-O2`, so CPython's `-O3` holds, and LDFLAGS, plus
frame pointers and rpath `$ORIGIN/../lib`), `make -j2`,
install, the same cleanup and strip; a runtime stage FROM the same base with the runtime
libraries (apt) and `COPY --from=build /usr/local`. Built with
`buildah bud --isolation chroot --network host --layers` (`--no-cache` for cold builds,
`--platform linux/arm64` under qemu-user for comparison 5).
"""


def repo_relative(text: str, repo: Path = REPO) -> str:
    """``text`` with paths into ``repo`` (and into any checkout's venv) relative to it."""
    return _VENV_PATH.sub("", text.replace(f"{repo}/", ""))


def render(data: Mapping[str, Any], results_file: str, repo: Path = REPO) -> str:
    """RESULTS.md of a results file, ``results_file`` as the markdown refers to it."""
    text = render_markdown(data, titles=titles(), preamble=PREAMBLE, results_file=results_file)
    return repo_relative(text, repo)


def write_outputs(results: Path, markdown: Path, data: Mapping[str, Any]) -> None:
    """Write ``markdown`` from ``data``, the results file ``results``."""
    markdown.write_text(render(data, os.path.relpath(results, markdown.parent)))
