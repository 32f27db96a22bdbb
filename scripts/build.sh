#!/usr/bin/env bash
# Set up the machine, pin what images.lock leaves unpinned, then build every buildable
# tag of images.toml (both arches) into dist/oci. Extra arguments go to `bink-python build`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$here/scripts/setup.sh" | tail -n 1)"
cd "$here"

# the same images.toml as the build: --config PATH or --config=PATH among the arguments
config=()
previous=""
for arg in "$@"; do
  case "$arg" in
    --config=*) config=("$arg") ;;
    *) if [ "$previous" = "--config" ]; then config=(--config "$arg"); fi ;;
  esac
  previous="$arg"
done

# A first build needs every input pinned: pin what is not, from the checksums upstream
# publishes (trust on first use where it publishes none, and said so); nothing is fetched
# when everything is pinned already.
if ! "$bin/bink-python" lock --check "${config[@]}" >/dev/null 2>&1; then
  echo "build.sh: images.lock leaves inputs unpinned: pinning them first" >&2
  "$bin/bink-python" lock --unpinned "${config[@]}"
fi
exec "$bin/bink-python" build "$@"
