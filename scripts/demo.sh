#!/usr/bin/env bash
# Install the project into .venv and run the main job offline on the bundled seeds:
# index them, answer a question with verified citations, and write a briefing to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/rag index seeds/
echo
.venv/bin/rag ask "What is Walmart's model?"
echo
.venv/bin/rag ask "Who is the CEO of Walmart?"
echo
.venv/bin/rag brief seeds/ --out out/
echo "Open out/briefing.md to read the briefing."
