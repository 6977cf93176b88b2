# Sourced by the other scripts: makes sure uv exists and the locked environment is in place.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check uv
  uv() { python3 -m uv "$@"; }
fi
uv sync --frozen --quiet
