"""A pytest plugin (`-p tests.library_patches`, pyproject.toml): the library patches, applied
as `kadr api` and `kadr worker` apply them, before any conftest or test module imports aiogram."""

from __future__ import annotations

import pytest

from core.infra import patches


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    patches.apply()
