#!/usr/bin/env bash
# The workbench in one command: install what is missing into .venv, provision the models, start the
# embedded services, the local LLM server, a worker and the UI at http://localhost:8501.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh local
exec .venv/bin/mmos up "$@"
