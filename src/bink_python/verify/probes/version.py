"""Which interpreter answers ``python3``: multiarch, machine, executable, prefix."""

from __future__ import annotations

import json
import platform
import sys


def main(argv: list[str]) -> dict[str, object]:
    del argv
    return {
        "multiarch": getattr(sys.implementation, "_multiarch", None),
        "machine": platform.machine(),
        "executable": sys.executable,
        "prefix": sys.prefix,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
