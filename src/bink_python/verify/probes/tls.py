"""The default TLS context's trust store: CA certificate counts and where they came from."""

from __future__ import annotations

import json
import ssl
import sys


def main(argv: list[str]) -> dict[str, object]:
    del argv
    ctx = ssl.create_default_context()
    paths = ssl.get_default_verify_paths()
    return {"stats": ctx.cert_store_stats(), "cafile": paths.cafile, "capath": paths.capath}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
