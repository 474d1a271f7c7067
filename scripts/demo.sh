#!/usr/bin/env bash
# README command (a): set up .venv when needed, then run the main job on embedded data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
set -x
zoo list
zoo info digitnet
