"""``bink-python`` with extra packages in every base: the "security rebuild" case.

    python -m bench.patched --extra-package PKG [--extra-package PKG ...] -- BINK_PYTHON_ARGS

A base that changed (here: one package added, as a security update changes package
versions) while CPython did not. ``build.base_spec`` is wrapped so every base of the
build gets the extra packages (a new base key); runtimes keep their keys and are reused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from bink_python.__main__ import main as bink_main
from bink_python.base.spec import BaseSpec
from bink_python.image.description import ImageDescription
from bink_python.pipeline import build


def with_extra_packages(extra: tuple[str, ...]) -> None:
    """Make ``build.base_spec`` add ``extra`` to every base."""
    original = build.base_spec

    def base_spec(image: ImageDescription) -> BaseSpec:
        return replace(original(image), extra_packages=extra)

    build.base_spec = base_spec


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        print("usage: python -m bench.patched --extra-package PKG ... -- ARGS", file=sys.stderr)
        return 2
    split = args.index("--")
    parser = argparse.ArgumentParser(prog="python -m bench.patched")
    parser.add_argument("--extra-package", action="append", required=True, metavar="PKG")
    opts = parser.parse_args(args[:split])
    with_extra_packages(tuple(opts.extra_package))
    return bink_main(args[split + 1 :])


if __name__ == "__main__":
    sys.exit(main())
