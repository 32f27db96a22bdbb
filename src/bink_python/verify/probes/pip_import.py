"""Imports the package ``pip install --target argv[0]`` installed from verify's wheel."""

from __future__ import annotations

import importlib
import json
import sys


def main(argv: list[str]) -> dict[str, object]:
    sys.path.insert(0, argv[0])
    module = importlib.import_module("bink_verify_probe")
    return {"value": getattr(module, "VALUE", None), "file": module.__file__}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
