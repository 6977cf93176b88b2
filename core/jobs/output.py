"""The shape of a job's result: which kind of output it is and which files it holds."""

from __future__ import annotations

from typing import Any

from core.domain.catalog import Output, catalog
from core.domain.models import Job


def output_of(job: Job, result: dict[str, Any]) -> Output:
    """The shape the catalog declares; for a model since removed, the shape the result has."""
    model = catalog().find(job.model)
    if model is not None:
        return model.output
    return "video" if "video" in result else "image" if "image" in result else "images"


def media_files(output: Output, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The file entries (url, file_size, …) a model returned, by the shape of its output."""
    items = (result.get("images") or []) if output == "images" else [result.get(output) or {}]
    return [item for item in items if isinstance(item, dict) and item.get("url")]
