"""The model catalog: which fal models each mode offers, what they cost, where their jobs run.

Read from `catalog.toml` beside this module (or the file `KADR_CATALOG` names), validated
once per process.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

DEFAULT_PATH = Path(__file__).with_name("catalog.toml")

Mode = Literal["text_to_image"]
Output = Literal["images", "image", "video"]


class CatalogError(Exception):
    """The catalog file is unreadable or inconsistent; the message names the problem."""


class ModelSpec(BaseModel):
    id: str = Field(pattern=r"^[\w.-]+/[\w.-]+(/[\w.-]+)*$")
    mode: Mode
    title: str
    price: int = Field(ge=0)
    output: Output
    defaults: dict[str, Any] = {}


class ModeSpec(BaseModel):
    default: str
    queue: str
    deadline_minutes: float = Field(gt=0)
    check_after_minutes: float = Field(gt=0)

    @property
    def deadline(self) -> timedelta:
        return timedelta(minutes=self.deadline_minutes)

    @property
    def check_after(self) -> timedelta:
        """How long without a webhook before the sweeper asks fal once."""
        return timedelta(minutes=self.check_after_minutes)


class Catalog(BaseModel):
    modes: dict[Mode, ModeSpec]
    models: list[ModelSpec]

    @model_validator(mode="after")
    def _defaults_exist(self) -> Catalog:
        ids = {model.id for model in self.models}
        for name, mode in self.modes.items():
            if mode.default not in ids:
                raise ValueError(f"mode {name}: default model {mode.default} is not in [[models]]")
        return self

    def model(self, model_id: str) -> ModelSpec:
        for model in self.models:
            if model.id == model_id:
                return model
        raise KeyError(model_id)

    def default_model(self, mode: Mode) -> ModelSpec:
        return self.model(self.modes[mode].default)


def load_catalog(path: Path = DEFAULT_PATH) -> Catalog:
    try:
        return Catalog.model_validate(tomllib.loads(path.read_text()))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"catalog {path}: {exc}") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise CatalogError(f"catalog {path}: {where}: {error['msg']}") from None


@cache
def catalog() -> Catalog:
    """The process's catalog; `KADR_CATALOG` points at another file (tests, operators)."""
    return load_catalog(Path(os.environ.get("KADR_CATALOG") or DEFAULT_PATH))
