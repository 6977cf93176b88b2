#!/usr/bin/env bash
# Runs kadr from .env: migrations, then `kadr api` and `kadr worker` together; Ctrl-C stops both.
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
uv run kadr migrate
trap 'kill 0' INT TERM EXIT
uv run kadr api --host "${KADR_HOST:-127.0.0.1}" --port "${KADR_PORT:-8000}" &
uv run kadr worker &
wait -n
