#!/usr/bin/env bash
# Install everything and run the whole test suite: lint, then the suite on SQLite, then the
# suite again on a real PostgreSQL server (with a real Redis) started here on loopback.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv
ensure_system_packages

cleanup() { stop_redis; stop_postgres; }
trap cleanup EXIT

log "Lint: ruff check, ruff format --check, migrations match models"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
env -u DATABASE_URL "$PY" manage.py makemigrations --check --dry-run >/dev/null

log "Test suite on SQLite"
env -u DATABASE_URL -u REDIS_URL "$VENV/bin/pytest" -p no:cacheprovider "$@"

start_postgres
start_redis
log "Test suite on PostgreSQL ($DATABASE_URL) with Redis ($REDIS_URL)"
"$VENV/bin/pytest" -p no:cacheprovider "$@"
