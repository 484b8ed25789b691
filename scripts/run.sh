#!/usr/bin/env bash
# Install everything and run the app on the embedded default: a SQLite file in var/, Celery
# tasks run in-process, email printed to this console, demo data loaded, admin login printed;
# the dashboard at /, the admin at /admin/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv

export DEBUG="${DEBUG:-true}"
mkdir -p var
log "Applying migrations (SQLite: var/db.sqlite3 unless DATABASE_URL is set)"
"$PY" manage.py migrate --no-input -v 0
log "Loading demo data (the 2023 GPU shortage)"
"$PY" manage.py load_demo
"$PY" manage.py ensure_admin
log "Serving the dashboard on http://127.0.0.1:${PORT:-8000}/ and the admin on /admin/  (Ctrl-C to stop)"
exec "$PY" manage.py runserver "127.0.0.1:${PORT:-8000}"
