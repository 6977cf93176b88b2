# core first: importing it leaves aiogram's models to be built on first use
# (core/infra/lazy_aiogram.py), whichever module of this package is imported before aiogram.
import core  # noqa: F401
