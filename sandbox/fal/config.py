"""Run-time knobs of the stand-in, changed by tests through POST /_sandbox/config."""

import math
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency: dict[str, float] = Field(default_factory=lambda: {"default": 0.2})
    """Seconds in progress, by model id, then by family name, then "default"."""
    distribution: Literal["fixed", "lognormal"] = "fixed"
    sigma: float = Field(default=0.5, ge=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    webhook_copies: int = Field(default=1, ge=1)
    webhook_delay: float = Field(default=0.0, ge=0)
    webhook_drop: bool = False
    webhook_retries: int = Field(default=3, ge=0)
    webhook_retry_delay: float = Field(default=0.5, ge=0)
    running_apps_stop_on_cancel: bool = False
    """fal removes a queued request on cancel; to one in progress it only sends a signal, and
    the model app decides: by default here it finishes anyway, and is billed."""

    def latency_for(self, model_id: str, family: str) -> float:
        """Median from the table; lognormal keeps that median and adds a realistic long tail."""
        median = self.latency.get(
            model_id, self.latency.get(family, self.latency.get("default", 0.2))
        )
        if self.distribution == "fixed" or median <= 0:
            return median
        return random.lognormvariate(math.log(median), self.sigma)


class Settings:
    """The current config; a merge replaces it whole so readers never see half an update."""

    def __init__(self, latency: float) -> None:
        self.defaults = Config(latency={"default": latency})
        self.current = self.defaults

    def merge(self, patch: dict[str, Any]) -> Config:
        """A bare number for latency sets the default; a bad patch raises and changes nothing."""
        merged = self.current.model_dump()
        latency = patch.get("latency")
        if isinstance(latency, int | float) and not isinstance(latency, bool):
            latency = {"default": latency}
        if isinstance(latency, dict):
            patch = {**patch, "latency": {**merged["latency"], **latency}}
        self.current = Config.model_validate({**merged, **patch})
        return self.current

    def reset(self) -> None:
        self.current = self.defaults
