#!/usr/bin/env bash
# make demo: the main job on a built-in default.
set -euo pipefail
BIN=${RULELENS_BIN:-.build/release/rulelens}
$BIN --version
