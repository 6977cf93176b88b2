"""kadr's shared code. Importing it first leaves aiogram's models to be built on first use."""

from core.infra.lazy_aiogram import install as _install_lazy_aiogram

_install_lazy_aiogram()
