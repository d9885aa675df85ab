#!/usr/bin/env bash
# Builds pullcred with the test-clock feature (the simulation moves its clock) and runs the
# fleet simulation: bench/fleet.sh [--nodes 200] [--images 12] [--registries 4]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q --features test-clock
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib || true
exec python3 bench/fleet.py "$@"
