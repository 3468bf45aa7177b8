#!/usr/bin/env bash
# Install planner with its test extras, then run every check CI runs:
# ruff (lint), mypy (types), pytest (unit tests, doctests, notebooks).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet -e ".[test]"
python3 -m ruff check planner tests bench
python3 -m mypy
python3 -m pytest --nbmake notebooks tests planner "$@"
