#!/usr/bin/env bash
# Install everything and run the app on the embedded default: a SQLite file in var/, Celery
# tasks run in-process, email written to var/mail/, demo data loaded; the dashboard at /, the
# admin at /admin/. The last lines printed are the address, the user name and the password.
# DEBUG stays off (the app's own error pages) unless set; PORT (8000) picks the port, and
# SITE_URL, the base of every link printed or mailed, follows it unless set.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv

export PORT="${PORT:-8000}"
export SITE_URL="${SITE_URL:-http://127.0.0.1:$PORT}"
export DEBUG="${DEBUG:-false}"
export LOG_LEVEL="${LOG_LEVEL:-WARNING}"
# Another server on the port would answer for ours, and the login printed would not be ours.
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "Port $PORT is already in use: stop what serves there, or choose another port (PORT=8001 bash scripts/run.sh)." >&2
  exit 1
fi
mkdir -p var
log "Applying migrations (SQLite: var/db.sqlite3 unless DATABASE_URL is set)"
"$PY" manage.py migrate --no-input -v 0
"$PY" manage.py collectstatic --no-input -v 0
log "Loading demo data (the GPU shortage, dated up to today; its emails go to var/mail/)"
"$PY" manage.py load_demo
login="$("$PY" manage.py ensure_admin --no-color)"

# runserver's banner goes nowhere, so the login is the last thing printed; its request log
# (warnings and errors at LOG_LEVEL=WARNING) still reaches the console.
"$PY" manage.py runserver --noreload --skip-checks "127.0.0.1:$PORT" >/dev/null &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server"' INT TERM
for _ in $(seq 300); do
  kill -0 "$server" 2>/dev/null || { wait "$server"; exit; }
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
log "Serving the dashboard on $SITE_URL/ and the admin on $SITE_URL/admin/  (Ctrl-C to stop)"
printf '%s\n' "$login"
wait "$server"
