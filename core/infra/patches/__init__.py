"""Every change kadr makes to a library's internals, in one place, applied by the entry points
(`kadr/cli.py`) and the tests (`tests/conftest.py`), never by importing a module.

Each patch was written for one release of its library and relies on names that library does
not promise to keep, so `apply()` refuses any other release with one line instead of failing
later in a way that looks like an upstream bug. `pyproject.toml` pins both libraries to the
minor versions below; moving a pin means reading each patch against the new release (its
docstring says what it relies on, and `tests/core/infra/test_patches.py` checks it), then changing
the version here.

- `lazy_aiogram`: aiogram's models built on first use, not at import (aiogram).
- `aiogram_responses`: the Bot API's answer classes kept once built (aiogram).
- `arq_claims`: claims on tasks that die with their worker (arq).
"""

from __future__ import annotations

from importlib.metadata import version

from core.infra.patches import lazy_aiogram

#: The releases the patches were written for, and checked against.
WRITTEN_FOR = {"aiogram": "3.31.0", "arq": "0.28.0"}


class UnexpectedVersion(Exception):
    """A patched library is not the release its patch was written for."""


def check_versions() -> None:
    for library, expected in WRITTEN_FOR.items():
        installed = version(library)
        if installed != expected:
            raise UnexpectedVersion(
                f"{library} {installed} is installed, but kadr's patches of it were written for "
                f"{expected} (core/infra/patches/): install {library}=={expected} (uv.lock)"
            )


def apply() -> None:
    """Check the versions, then patch; before the first `import aiogram` of the process, or
    aiogram's models are built eagerly (slower to start, otherwise the same)."""
    check_versions()
    lazy_aiogram.install()
