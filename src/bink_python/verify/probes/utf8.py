"""A file with a non-ASCII UTF-8 name is created, listed and read back unchanged."""

from __future__ import annotations

import json
import os
import sys
import tempfile

NAME = "bink-\u00fcn\u00efc\u00f8d\u00e9-\u6587\u5b57-\U0001f40d.txt"


def main(argv: list[str]) -> dict[str, object]:
    del argv
    out: dict[str, object] = {
        "fsencoding": sys.getfilesystemencoding(),
        "stdout": sys.stdout.encoding,
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, NAME), "w", encoding="utf-8") as handle:
                handle.write(NAME)
            listed = os.listdir(tmp)
            raw = os.listdir(os.fsencode(tmp))
            with open(os.path.join(tmp, listed[0]), encoding="utf-8") as handle:
                content = handle.read()
        out["roundtrip"] = listed == [NAME] and content == NAME
        out["bytes"] = raw == [NAME.encode("utf-8")]
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
