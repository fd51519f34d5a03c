#!/usr/bin/env bash
# The test command (README): set up, then lint, type-check and run every test, storage tests on
# SQLite and on the real PostgreSQL, event tests through the real Mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh
export DIALER_TEST_PG_URL="${DIALER_TEST_PG_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}"
export DIALER_TEST_MQTT="${DIALER_TEST_MQTT:-127.0.0.1:1883}"
echo "== ruff"; .venv/bin/ruff check dialer tests bench
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
