#!/usr/bin/env bash
# The test suite: real Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, database `test`).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
uv run ruff check .
uv run ruff format --check .
uv run mypy api bot core workers kadr sandbox
uv run lint-imports
uv run pytest "$@"
