#!/usr/bin/env bash
# Load benchmark: the app under gunicorn on loopback, driven by wrk, on a throwaway PostgreSQL
# server holding N generated orders (both stopped, and their directories removed, on exit).
# Installs wrk from Debian's packages when missing. Arguments go to bench/load.py, e.g.
#   bash bench/load.sh                                  # 100,000 orders, 20 s per page
#   bash bench/load.sh --orders 2000 --duration 5       # a quick check
#   bash bench/load.sh --baseline 90009d4               # that revision's own run first, then
#                                                       # a before/after table
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_venv
ensure_system_packages wrk

WORK="$(mktemp -d /tmp/procurement-load.XXXXXX)"
cleanup() {
  # bench/load.py stops gunicorn itself; this is for when it was killed before it could.
  if [[ -f "$WORK/pid" ]]; then
    kill -TERM -- "-$(cat "$WORK/pid")" 2>/dev/null || true
  fi
  stop_postgres
  rm -rf "$WORK"
}
trap cleanup EXIT
start_postgres
"$PY" bench/load.py --workdir "$WORK" "$@"
