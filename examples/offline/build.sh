#!/usr/bin/env bash
# Build the whole pipeline on a machine that reaches only the Debian archive.
#
#   examples/offline/build.sh OUTPUT_DIR [extra `bink-python build` options]
#
# 1. compiles stand-in linkerd-await ELF binaries for amd64 and arm64,
# 2. seeds the fetch cache with them and pins them (`cache add --for`) in a copy of
#    this example's images.lock (the committed one stays unpinned),
# 3. runs `bink-python build` (fetching CPython 3.13.15 through the Debian archive
#    mirror configured on the machine), which verifies every image before its tags
#    move (unless the extra options say `--no-verify`),
# 4. leaves the OCI layout in OUTPUT_DIR/oci (config copy in OUTPUT_DIR/config).
#
# Uses `bink-python` from PATH (run ./scripts/setup.sh first, or put its venv on PATH).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:?usage: build.sh OUTPUT_DIR [bink-python build options]}"
shift
mkdir -p "$out/config" "$out/standin"
out="$(cd "$out" && pwd)"

cp "$here/images.toml" "$here/images.lock" "$out/config/"
config="$out/config/images.toml"

gcc -static -O2 -o "$out/standin/linkerd-await-amd64" "$here/linkerd-await-standin.c"
aarch64-linux-gnu-gcc -static -O2 -o "$out/standin/linkerd-await-arm64" "$here/linkerd-await-standin.c"

for arch in amd64 arm64; do
  bink-python cache add --config "$config" --for "linkerd-await:0.3.3:$arch" \
    "$out/standin/linkerd-await-$arch"
done

bink-python build --config "$config" --output "$out/oci" "$@"
echo "OCI layout: $out/oci"
