# shellcheck shell=bash
# Sourced by the other scripts: a pinned uv of the project's own, whatever else the machine has.
# Only python3 is assumed: uv goes into a private venv under .cache/ (the system Python stays
# untouched, which Debian's externally managed Python insists on). Defines `uv` for the caller.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

UV_VERSION=0.13.9
UV_HOME=.cache/uv-bootstrap
# `uv --version` prints "uv 0.13.9 (target)": the second word is the version.
if [ "$("$UV_HOME/bin/uv" --version 2>/dev/null | cut -d ' ' -f 2)" != "$UV_VERSION" ]; then
  rm -rf "$UV_HOME"
  if ! python3 -m venv "$UV_HOME" >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's pip bootstrap in a package of its own.
    if [ "$(id -u)" != 0 ]; then
      echo "scripts/env.sh: python3 cannot make a venv: install python3-venv (apt-get install python3-venv)" >&2
      exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
    rm -rf "$UV_HOME"
    python3 -m venv "$UV_HOME"
  fi
  "$UV_HOME/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
KADR_UV="$PWD/$UV_HOME/bin/uv"
uv() { "$KADR_UV" "$@"; }
export UV_FROZEN=1  # install what uv.lock says; never re-resolve it
