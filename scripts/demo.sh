#!/usr/bin/env bash
# Set up (first run only) and run the demo: local stack, simulated cameras, all
# workers and the API on http://127.0.0.1:8000. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/cctv demo "$@"
