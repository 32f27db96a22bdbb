"""Run by a venv's python: its prefix and base prefix."""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> dict[str, object]:
    del argv
    return {"prefix": sys.prefix, "base": sys.base_prefix}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
