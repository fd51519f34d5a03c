#!/usr/bin/env bash
# The main job (README): set up, then run a demo campaign against the built-in Asterisk
# simulator on an embedded SQLite file. Extra arguments go to `dialer demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo needs the package alone: no test extras (their Korean Vosk test model is ~250 MB).
DIALER_SETUP_NO_APT=1 DIALER_SETUP_EXTRAS="" bash scripts/setup.sh
exec .venv/bin/dialer demo "$@"
