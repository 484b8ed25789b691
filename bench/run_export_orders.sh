#!/usr/bin/env bash
# Benchmark the CSV export on a throwaway PostgreSQL server started here on loopback (stopped,
# and its data directory removed, on exit). Arguments go to bench/export_orders.py, e.g.
#   bash bench/run_export_orders.sh --orders 10000
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_venv
ensure_system_packages
trap stop_postgres EXIT
start_postgres
"$PY" bench/export_orders.py "$@"
