"""How deep recursion gets (limit 10000) in the main thread and in a new thread."""

from __future__ import annotations

import json
import sys
import threading


def depth(n: int) -> int:
    try:
        return depth(n + 1)
    except RecursionError:
        return n


def main(argv: list[str]) -> dict[str, object]:
    del argv
    sys.setrecursionlimit(10000)
    out: dict[str, object] = {"main": depth(0)}

    def worker() -> None:
        out["thread"] = depth(0)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
