#!/usr/bin/env bash
# Install everything the tests need (Python packages, Debian's Chromium), then run every test.
# Needs Python 3.10+ (python3 is enough); installs into the active virtual environment, else
# into the project's .venv, which it makes on the first run (scripts/python-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
if ! choose_python; then
  # Debian's python3 makes a virtual environment only with python3-venv (ensurepip).
  command -v apt-get >/dev/null || exit 1
  say "Installing Debian's python3-venv, then trying again."
  apt_install python3-venv
  choose_python || exit 1
fi
install_requirements requirements-test.txt
# Debian's Chromium for the browser tests, and Node with npm for the JS client's test
# (tests/test_agents.py), which calls the app with @gradio/client from the git-ignored .gradio/.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || { say "Install ${missing[*]} (Debian: apt-get install ${missing[*]}) and run this again."; exit 1; }
  apt_install "${missing[@]}"
fi
# Installed here, with the other packages, so no test reaches anything but loopback.
NODE_CLIENT=.gradio/node-client
if [ ! -f "$NODE_CLIENT/node_modules/@gradio/client/dist/index.js" ]; then
  mkdir -p "$NODE_CLIENT"
  npm install --silent --no-audit --no-fund --prefix "$NODE_CLIENT" @gradio/client@1.19.1 >/dev/null
fi
# Four workers, each a whole file at a time (its module's launched app shared, never split):
# many tests wait on loopback servers, so four keep the two cores busier than three (the whole
# suite in 7 min 11 s against 7 min 40 s on this 2-core machine, side by side; bench/README.md).
# `-n 0` runs in one process; SKYREELS_TEST_WORKERS sets how many.
"$PYTHON" -m pytest -n "${SKYREELS_TEST_WORKERS:-4}" --dist loadfile "$@"
