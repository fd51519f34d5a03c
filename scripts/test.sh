#!/usr/bin/env bash
# The test command (README): set up, build (or reuse) the real Asterisk of ../shared/asterisk, then
# lint, type-check and run every test — storage on SQLite and on the real PostgreSQL, events
# through the real Mosquitto, calls against the simulator and against two real Asterisk instances
# (tests/asterisk/). Arguments go to pytest (e.g. `scripts/test.sh tests/asterisk -x`).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
phase() { echo "== $1 ($((SECONDS - started)) s so far)"; }

phase "setup"
bash scripts/setup.sh
bash scripts/services.sh
export DIALER_TEST_PG_URL="${DIALER_TEST_PG_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}"
export DIALER_TEST_MQTT="${DIALER_TEST_MQTT:-127.0.0.1:1883}"

# The Asterisk build kit: a cache hit returns at once; a cold build takes minutes. If it cannot
# build, stop here with the tail of its log: the real-Asterisk tests are never skipped.
phase "asterisk (../shared/asterisk/build)"
kit=../shared/asterisk/build
if [ ! -x "$kit" ]; then
  echo "test.sh: the Asterisk build kit is missing: $(pwd)/$kit (CI keeps ../shared beside the clone)" >&2
  exit 1
fi
kit_err=$(mktemp)
kit_started=$SECONDS
if ! ast_out=$("$kit" 2>"$kit_err"); then
  log="${ASTERISK_PREFIX:-$HOME/.cache/asterisk-22.10.1}/build.log"
  echo "test.sh: the Asterisk build failed; last lines of its output:" >&2
  tail -n 20 "$kit_err" >&2
  if [ -f "$log" ]; then
    echo "--- last 40 lines of $log ---" >&2
    tail -n 40 "$log" >&2
  fi
  rm -f "$kit_err"
  exit 1
fi
rm -f "$kit_err"
DIALER_ASTERISK_PREFIX=$(printf '%s\n' "$ast_out" | tail -n 1)
export DIALER_ASTERISK_PREFIX
echo "asterisk: $("$DIALER_ASTERISK_PREFIX/sbin/asterisk" -V) at $DIALER_ASTERISK_PREFIX ($((SECONDS - kit_started)) s)"

phase "ruff"; .venv/bin/ruff check dialer tests bench
phase "mypy"; .venv/bin/mypy
phase "pytest"; .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
phase "done"
