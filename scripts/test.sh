#!/usr/bin/env bash
# The test suite. It needs Redis and PostgreSQL: scripts/services.sh starts private ones (or uses
# those named by KADR_TEST_REDIS / KADR_TEST_PG) and stops them when this script ends.
# Arguments go to pytest (e.g. `bash scripts/test.sh tests/core -x`).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source scripts/services.sh
uv sync --quiet
uv run --no-sync ruff check .
uv run --no-sync ruff format --check .
uv run --no-sync mypy api bot core workers kadr sandbox
uv run --no-sync lint-imports
uv run --no-sync pytest --durations=15 "$@"
