#!/usr/bin/env bash
# README command (b): set up .venv when needed, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  echo "no tests were collected"; exit 1
fi
exit "$rc"
