#!/usr/bin/env bash
# Set up (first run only) and run the whole test suite against real services:
# the tests start the broker and S3 store themselves; PostgreSQL is the
# machine's server on 127.0.0.1:5432 (started here if it is installed but down);
# the web app's browser tests drive Debian's chromium (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/install-browser.sh
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
fi
.venv/bin/ruff check .
.venv/bin/mypy cctv ingest detector evidence_store api
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
