#!/usr/bin/env bash
# Idempotent set-up: a virtualenv in .venv with the package and its test extras, the Debian
# tools the audio corpus needs (espeak-ng, sox, festival), and the local PostgreSQL and
# Mosquitto that the tests talk to (started only if they are down).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need_apt+=(sox libsox-fmt-all)
command -v festival >/dev/null 2>&1 || need_apt+=(festival festvox-ru)
# the review page of `dialer announcements serve` is tested in headless Chromium
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium chromium-driver)
if [ "${#need_apt[@]}" -gt 0 ] && [ -z "${DIALER_SETUP_NO_APT:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]} (Debian packages)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: warning: ${need_apt[*]} missing and apt-get unavailable; corpus tests will fail" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import dialer, vosk, sqlalchemy, aiomqtt" # fail loudly if the install broke
