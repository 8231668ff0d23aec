#!/usr/bin/env bash
# Create .venv, install the project (and extras), provision the model files. Idempotent and quick
# when nothing changed: the install is skipped while pyproject.toml and the extras are unchanged,
# and provisioning checks hashes of what is already in the cache directory.
#   scripts/bootstrap.sh [extras]    e.g. "local" or "local,dev"
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
py="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$py" -m venv .venv
fi
stamp=".venv/.mmos-install-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  echo "==> installing the project [$extras] (the first time compiles llama.cpp: ~5 min on 2 cores)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[${extras}]"
  rm -f .venv/.mmos-install-*
  touch "$stamp"
fi
echo "==> provisioning model files (GGUF weights, ONNX embedder) into ${MMOS_CACHE_DIR:-~/.cache/mmos}"
.venv/bin/mmos models provision
