#!/usr/bin/env bash
# Install everything and run the whole test suite: lint, then the suite on SQLite, then the
# suite again on a real PostgreSQL server (with a real Redis) started here on loopback. The
# browser tests (tests/e2e, Debian's Chromium) run once, in the PostgreSQL pass.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv
ensure_system_packages chromium

cleanup() { stop_redis; stop_postgres; }
trap cleanup EXIT

log "Lint: ruff check, ruff format --check, migrations match models"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
DATABASE_URL=sqlite://:memory: "$PY" manage.py makemigrations --check --dry-run >/dev/null

log "Test suite on SQLite"
env -u DATABASE_URL -u REDIS_URL SKIP_E2E="browser tests run once, in the PostgreSQL pass" \
  "$VENV/bin/pytest" -p no:cacheprovider "$@"

start_postgres
start_redis
log "Test suite on PostgreSQL ($DATABASE_URL) with Redis ($REDIS_URL), and the browser tests"
E2E_REQUIRED=1 "$VENV/bin/pytest" -p no:cacheprovider "$@"
