"""Importing the standard library compiles nothing: every module comes from its bytecode.

argv: a JSON list of stdlib modules the image leaves out, a JSON list of more modules to
import (submodules the top-level imports do not reach). Run as the unprivileged user with
the image's own ``__pycache__`` (no ``PYTHONPYCACHEPREFIX``): a module whose bytecode is
missing or stale would be compiled from source, on every start, since the user cannot
write it. Records every source compiled after start-up, checks the bytecode of the modules
start-up imported (this interpreter's magic number, the source's mtime and size), and
imports every ``sys.stdlib_module_names`` module that exists for this platform.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys

#: antigravity opens a web browser, this prints the Zen; _ios_support needs Apple's ObjC
SKIPPED = frozenset({"antigravity", "this", "_ios_support"})


def _stale_startup_modules() -> list[str]:
    stale = []
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        origin = getattr(spec, "origin", None) or ""
        if not origin.endswith(".py"):
            continue
        try:
            with open(importlib.util.cache_from_source(origin), "rb") as handle:
                header = handle.read(16)
            st = os.stat(origin)
        except (OSError, NotImplementedError):
            stale.append(origin)
            continue
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != importlib.util.MAGIC_NUMBER or (
            flags == 0
            and (
                int.from_bytes(header[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                or int.from_bytes(header[12:16], "little") != st.st_size & 0xFFFFFFFF
            )
        ):
            stale.append(origin)
    return stale


def main(argv: list[str]) -> dict[str, object]:
    removed = set(json.loads(argv[0])) if argv and argv[0] else set()
    extra = json.loads(argv[1]) if len(argv) > 1 and argv[1] else []
    compiled: list[str] = []
    loader = importlib.machinery.SourceFileLoader
    original = loader.source_to_code

    def spy(self, data, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiled.append(str(path))
        return original(self, data, path, *args, **kwargs)

    loader.source_to_code = spy  # type: ignore[method-assign]
    try:
        stale = _stale_startup_modules()
        failed = []
        imported = 0
        # 3.9 has no stdlib_module_names: only ``extra`` is imported there
        names = sorted(set(getattr(sys, "stdlib_module_names", ())) - removed - SKIPPED)
        for name in [*names, *extra]:
            try:
                if name in sys.modules or importlib.util.find_spec(name) is None:
                    continue
                __import__(name)
                imported += 1
            except Exception as exc:  # every failure is reported, none stops the probe
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        still_there = [n for n in sorted(removed) if importlib.util.find_spec(n) is not None]
    finally:
        loader.source_to_code = original  # type: ignore[method-assign]
    return {
        "compiled": sorted(set(compiled)),
        "stale": stale,
        "failed": failed,
        "imported": imported,
        "removed_found": still_there,
        "magic": importlib.util.MAGIC_NUMBER.hex(),
        "prefix": sys.prefix,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
