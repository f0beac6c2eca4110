#!/usr/bin/env bash
# Install the app's dependencies and start it (with no WAVESPEED_API_KEY: the offline preview).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec python app.py "$@"
