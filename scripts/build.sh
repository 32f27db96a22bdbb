#!/usr/bin/env bash
# Set up the machine, then build every buildable tag of images.toml (both arches)
# into dist/oci. Extra arguments go to `bink-python build`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$here/scripts/setup.sh" | tail -n 1)"
cd "$here"
exec "$bin/bink-python" build "$@"
