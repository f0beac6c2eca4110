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
# What pip installs and what apt and npm install do not depend on each other: on a fresh machine
# (Chromium missing) they run side by side, Debian's packages and the JS client beside pip, which
# takes the seconds apt would have added (bench/README.md). Each speaks to its own log.
# Debian's Chromium for the browser tests, and Node with npm for the JS client's test
# (tests/test_agents.py), which calls the app with @gradio/client from the git-ignored .gradio/.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ] && ! command -v apt-get >/dev/null; then
  say "Install ${missing[*]} (Debian: apt-get install ${missing[*]}) and run this again."
  exit 1
fi
# Installed here, with the other packages, so no test reaches anything but loopback.
NODE_CLIENT=.gradio/node-client
SIDE_LOG=.gradio/test-setup.log
install_beside_pip() {
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}" || { say "apt-get could not install ${missing[*]}."; return 1; }
  fi
  if [ ! -f "$NODE_CLIENT/node_modules/@gradio/client/dist/index.js" ]; then
    mkdir -p "$NODE_CLIENT"
    npm install --silent --no-audit --no-fund --prefix "$NODE_CLIENT" @gradio/client@1.19.1 >/dev/null \
      || { say "npm could not install @gradio/client."; return 1; }
  fi
}
mkdir -p .gradio
if [ ${#missing[@]} -gt 0 ]; then
  # A job in the background reads no terminal: sudo asks for its password here, first.
  if [ -n "$SUDO" ] && ! { command -v sudo >/dev/null && sudo -v; }; then
    say "Installing ${missing[*]} needs root: run this as root or with sudo, or install them yourself (Debian: apt-get install ${missing[*]}), then run it again."
    exit 1
  fi
  say "Installing Debian's ${missing[*]} beside pip (its log: $SIDE_LOG)."
fi
install_beside_pip >"$SIDE_LOG" 2>&1 &
beside=$!
install_requirements requirements-test.txt  # on failure it says why and exits; apt finishes alone
if ! wait "$beside"; then
  say "Installing what the tests need besides Python failed. Its log is $SIDE_LOG; its last lines:"
  last_lines "$SIDE_LOG" 12 >&2
  say "Fix what they name (often the network, or a proxy), then run this again."
  exit 1
fi
# Four workers, each a whole file at a time (its module's launched app shared, never split):
# many tests wait on loopback servers, so four keep the two cores busier than three (the whole
# suite in 7 min 11 s against 7 min 40 s on this 2-core machine, side by side; bench/README.md).
# `-n 0` runs in one process; SKYREELS_TEST_WORKERS sets how many.
"$PYTHON" -m pytest -n "${SKYREELS_TEST_WORKERS:-4}" --dist loadfile "$@"
