#!/usr/bin/env bash
# Builds pullcred (the simulation moves its clock with PULLCRED_TEST_CLOCK_OFFSET) and runs
# the fleet simulation: bench/fleet.sh [--nodes 200] [--images 12] [--registries 4]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib || true
exec python3 bench/fleet.py "$@"
