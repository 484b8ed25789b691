#!/usr/bin/env bash
# Regenerate docs/screenshots/: the browser tests (tests/e2e) serve the app with the demo data
# on a SQLite file, drive it in Debian's headless Chromium, and keep a PNG of each page.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
ensure_venv
ensure_chromium

out="$ROOT/docs/screenshots"
mkdir -p "$out"
rm -f "$out"/*.png
log "Browser tests, screenshots into ${out#"$ROOT"/}/"
env -u DATABASE_URL -u SKIP_E2E E2E_REQUIRED=1 SCREENSHOTS_DIR="$out" \
  "$VENV/bin/pytest" -p no:cacheprovider -q tests/e2e "$@"
ls -1 "$out"
