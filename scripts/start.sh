#!/usr/bin/env bash
# Install the app's dependencies and start it (with no WAVESPEED_API_KEY: the offline preview).
# Needs Python 3.10+ (python3 is enough); installs into the active virtual environment, else
# into the project's .venv, which it makes on the first run (scripts/python-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
choose_python || exit 1
"$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec "$PYTHON" app.py "$@"
