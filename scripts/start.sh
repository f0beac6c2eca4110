#!/usr/bin/env bash
# Install the app's dependencies and start it (with no WAVESPEED_API_KEY: the offline preview).
# Needs Python 3.10+ (python3 is enough); installs into the active virtual environment, else
# into the project's .venv, which it makes on the first run (scripts/python-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
choose_python || exit 1
install_requirements requirements.txt
# Unbuffered, so "Running on local URL" reaches a log file as soon as it is said.
PYTHONUNBUFFERED=1 exec "$PYTHON" app.py "$@"
