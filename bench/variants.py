"""Variants of a runtime tarball for measuring one change at a time (comparison 10).

    python -m bench.variants RUNTIME.tar OUT.tar [--python FILE] [--no-bytecode]

``--python`` puts FILE (e.g. the release build's ``python.prebolt``, or the same objects
relinked against ``libpython3.13.so``; strip it first) in place of ``bin/python3.X``;
``--no-bytecode`` drops every ``__pycache__`` (the reference images ship none). Everything
else is the runtime's own bytes.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tarfile
from pathlib import Path

_PYTHON = re.compile(r"^usr/local/bin/python3\.\d+$")


def make_variant(runtime: Path, out: Path, *, python: Path | None, no_bytecode: bool) -> int:
    """Write ``out``; returns how many members were replaced or dropped."""
    changed = 0
    with tarfile.open(runtime) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src.getmembers():
            if no_bytecode and "/__pycache__" in f"/{member.name}":
                changed += 1
                continue
            if python is not None and member.isfile() and _PYTHON.match(member.name):
                data = python.read_bytes()
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
                changed += 1
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.variants")
    parser.add_argument("runtime", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--python", type=Path)
    parser.add_argument("--no-bytecode", action="store_true")
    args = parser.parse_args()
    changed = make_variant(args.runtime, args.out, python=args.python, no_bytecode=args.no_bytecode)
    print(f"{args.out}: {changed} members replaced or dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
