#!/usr/bin/env bash
# One-step set-up: the Debian packages the tests need (when root), a virtualenv in
# .venv, and adaptsim installed into it in editable mode with its test extras.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  command -v stress-ng >/dev/null 2>&1 || missing="$missing stress-ng"
  command -v tc >/dev/null 2>&1 || missing="$missing iproute2"
  if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  # Debian's chromium for the report's browser test: best effort (without it that
  # test skips with its reason; everything else works).
  if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium (the report's browser test)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
      >/dev/null 2>&1 || echo "setup: chromium not installed; the browser test will skip" >&2
  fi
fi

py=python3.11
command -v "$py" >/dev/null 2>&1 || py=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($py --version)" >&2
  "$py" -m venv .venv
fi
extras="test"
# Playwright's Python package drives Debian's chromium (no browser download) in the
# report's browser test; without chromium that test skips, so skip the package too.
command -v chromium >/dev/null 2>&1 && extras="test,browser"
if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]" \
  >.venv/pip-install.log 2>&1; then
  cat .venv/pip-install.log >&2
  echo "setup: pip install failed (log above)" >&2
  exit 1
fi
.venv/bin/python -c "import adaptsim" # fails loudly if the install did not take
