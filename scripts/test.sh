#!/usr/bin/env bash
# Set up the machine, then run every check: lint, types, README freshness, and the
# test suite (unit and integration). Extra arguments go to pytest
# (e.g. `-m "not integration"` for the fast unit tests only).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$("$here/scripts/setup.sh" | tail -n 1)"
cd "$here"
"$bin/ruff" check src tests bench
"$bin/ruff" format --check src tests bench
"$bin/mypy"
"$bin/bink-python" readme --check
"$bin/pytest" "$@"
