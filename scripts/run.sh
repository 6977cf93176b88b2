#!/usr/bin/env bash
# The main job: the whole bot on this machine with no bot token, no fal key and no network
# (`kadr demo`): Telegram and fal stand-ins, `kadr api` and `kadr worker` as real processes, and a
# private redis-server. Prints the URL of a Telegram-like chat page; Ctrl-C stops everything.
# Arguments go to `kadr demo` (--port N, --fast, --redis URL).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# The demo needs no dev tools; --inexact keeps those a developer's .venv already has.
uv sync --no-dev --inexact --quiet
uv run --no-sync kadr demo "$@"
