#!/usr/bin/env bash
# The test suite: unit, integration (real embedded PostgreSQL+pgvector and Redis), UI (AppTest),
# and one real local-model extraction. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh local,dev
exec .venv/bin/python -m pytest "$@"
