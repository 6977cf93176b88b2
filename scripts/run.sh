#!/usr/bin/env bash
# The main job: the whole bot on this machine with no bot token, no fal key and no network
# (`kadr demo`): Telegram and fal stand-ins, `kadr api` and `kadr worker` as real processes,
# Redis (a private one if none answers at REDIS_URL). Prints the URL of a Telegram-like chat
# page; Ctrl-C stops everything. Arguments go to `kadr demo` (--port N, --fast).
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
uv run --no-sync kadr demo "$@"
