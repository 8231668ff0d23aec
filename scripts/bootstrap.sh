#!/usr/bin/env bash
# Create .venv, install the project (and extras), provision the model files. Idempotent and silent
# when nothing changed: the install is skipped while pyproject.toml and the extras are unchanged,
# and provisioning checks hashes of what is already in the cache directory (`--quiet`: no output then).
# While pip runs (the first install compiles llama.cpp) a heartbeat line every 30 s says it is alive;
# on a terminal pip's own progress is shown too.
#   scripts/bootstrap.sh [extras]    e.g. "local" or "local,dev"
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-local}"
py="${PYTHON:-python3}"
heartbeat_s="${MMOS_BOOTSTRAP_HEARTBEAT_S:-30}"

# run "$label" cmd...: run cmd, printing "    ... still <label> (N s)" every $heartbeat_s seconds
run() {
  local label="$1" start=$SECONDS hb rc=0
  shift
  ( while sleep "$heartbeat_s"; do echo "    ... still ${label} ($((SECONDS - start)) s)"; done ) &
  hb=$!
  trap 'kill "$hb" 2>/dev/null || true' EXIT INT TERM
  "$@" || rc=$?
  kill "$hb" 2>/dev/null || true
  wait "$hb" 2>/dev/null || true
  trap - EXIT INT TERM
  return "$rc"
}

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$py" -m venv .venv
fi
stamp=".venv/.mmos-install-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/_}"
if [ ! -f "$stamp" ]; then
  quiet=(-q)
  [ -t 1 ] && quiet=()  # a terminal sees pip's progress bars and build steps
  echo "==> installing the project [$extras]"
  run "upgrading pip" .venv/bin/python -m pip install "${quiet[@]}" --upgrade pip
  run "installing [$extras]" .venv/bin/python -m pip install "${quiet[@]}" -e ".[${extras}]"
  rm -f .venv/.mmos-install-*
  touch "$stamp"
  echo "==> installed"
fi
# prints only when a model file is missing (downloads and builds show progress bars)
.venv/bin/mmos models provision --quiet
