#!/usr/bin/env bash
# Install planner with its test extras, then run every check CI runs:
# ruff (lint), mypy (types), pytest (unit tests, doctests, notebooks).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet -e ".[test]"
# browser tests render pages in Debian's Chromium (no browser download at test time)
if ! command -v chromium >/dev/null 2>&1 && [ -z "${PLANNER_CHROMIUM:-}" ]; then
    echo "installing Debian's chromium for the browser tests" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    if ! ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
          $SUDO apt-get install -y -qq chromium >/dev/null); then
        echo "WARNING: could not install chromium: the browser tests will be SKIPPED" >&2
    fi
fi
# a throwaway PostgreSQL + PostGIS cluster for the PostGIS store tests, removed at the end
if [ -z "${PLANNER_TEST_POSTGRES_URL:-}" ]; then
    PGDIR=$(mktemp -d /tmp/planner-pg.XXXXXX)
    trap 'bash scripts/postgres.sh stop "$PGDIR"' EXIT
    if URL=$(bash scripts/postgres.sh start "$PGDIR"); then
        export PLANNER_TEST_POSTGRES_URL="$URL"
        echo "PostgreSQL/PostGIS for the tests: $URL" >&2
    else
        echo "WARNING: could not start PostgreSQL/PostGIS: the PostGIS tests will be SKIPPED" >&2
    fi
fi
# the README's first command from a non-editable install, in a fresh virtual environment,
# run from another folder: the demo data must ship inside the package
WHEELTEST=$(mktemp -d /tmp/planner-wheel.XXXXXX)
python3 -m venv "$WHEELTEST/venv"
"$WHEELTEST/venv/bin/python" -m pip install --quiet --disable-pip-version-check . 2>&1 \
    | grep -v -e "^WARNING: Location" -e "^WARNING: Running pip as" >&2 || true
(cd "$WHEELTEST" && "$WHEELTEST/venv/bin/planner" demo --store "$WHEELTEST/demo.gpkg" >/dev/null)
echo "non-editable install: planner demo ran from $WHEELTEST" >&2
rm -rf "$WHEELTEST"
python3 -m ruff check planner tests bench
python3 -m mypy
lint-imports --no-cache
python3 -m pytest --durations=15 --nbmake notebooks tests planner "$@"
