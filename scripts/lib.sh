# Shared by scripts/run.sh, scripts/test.sh and bench/: a virtualenv with the pinned packages,
# and throwaway PostgreSQL / Redis servers on loopback. Source it; do not run it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

log() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

ensure_venv() {
  # Reinstall only when the declared or locked dependencies changed.
  local stamp="$VENV/.installed" want
  want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.lock" | sha256sum | cut -d' ' -f1)"
  if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  log "Installing Python packages into .venv (pinned by requirements.lock)"
  [[ -x "$PY" ]] || python3 -m venv "$VENV"
  # pip and the build backend warn even with --quiet (deprecations, index locations): their
  # output goes to a log, shown only if the install fails.
  local install_log="$VENV/install.log"
  if ! { "$PY" -m pip install --quiet --upgrade pip &&
    "$PY" -m pip install --quiet -c "$ROOT/requirements.lock" -e "$ROOT[dev]"; } >"$install_log" 2>&1; then
    cat "$install_log" >&2
    echo "Installing the Python packages failed (log: $install_log)" >&2
    return 1
  fi
  echo "$want" >"$stamp"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

_apt_install() {
  (($# == 0)) && return
  log "Installing Debian packages: $*"
  if [[ "$(id -u)" != 0 ]]; then
    echo "Need root to install $* (or install them yourself: apt-get install $*)" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_system_packages() {
  # PostgreSQL and Redis servers come from Debian's packages; `ensure_system_packages chromium`
  # adds the browser the e2e tests drive (Playwright's own browser download is never used);
  # `ensure_system_packages wrk` the HTTP load generator bench/load.sh drives.
  local missing=()
  [[ -n "$(pg_bin)" && -x "$(pg_bin)/initdb" ]] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  if [[ " $* " == *" chromium "* ]]; then
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  fi
  if [[ " $* " == *" wrk "* ]]; then
    command -v wrk >/dev/null || missing+=(wrk)
  fi
  _apt_install "${missing[@]}"
}

ensure_chromium() {
  [[ -x /usr/bin/chromium ]] || _apt_install chromium
}

# Runs a command as the owner of the PostgreSQL data directory (PostgreSQL refuses root).
_as_pg() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PG_DIR="" PG_PORT="" REDIS_DIR="" REDIS_PORT=""

start_postgres() {
  local bin
  bin="$(pg_bin)"
  PG_DIR="$(mktemp -d /tmp/procurement-pg.XXXXXX)"
  PG_PORT="$(free_port)"
  [[ "$(id -u)" == 0 ]] && chown postgres:postgres "$PG_DIR"
  _as_pg "$bin/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$PG_DIR/initdb.log"
  # fsync off: a throwaway test server, speed over durability.
  _as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w start -o \
    "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/procurement"
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') started on 127.0.0.1:$PG_PORT (data in $PG_DIR)"
}

stop_postgres() {
  [[ -n "$PG_DIR" && -d "$PG_DIR/data" ]] || return 0
  _as_pg "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=""
}

start_redis() {
  REDIS_DIR="$(mktemp -d /tmp/procurement-redis.XXXXXX)"
  REDIS_PORT="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" \
    --appendonly no --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" \
    --logfile "$REDIS_DIR/redis.log"
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  log "Redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') started on 127.0.0.1:$REDIS_PORT"
}

stop_redis() {
  [[ -n "$REDIS_DIR" ]] || return 0
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$REDIS_DIR"
  REDIS_DIR=""
}
