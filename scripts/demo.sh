#!/usr/bin/env bash
# Install the project into .venv and run the main job offline on the bundled seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/rag index seeds/
.venv/bin/rag search "prescription delivery" -k 2
