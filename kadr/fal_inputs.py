"""The catalog against the input schemas fal publishes: which keys kadr sends a model (or the
prompt helper's endpoint) that it does not have, and which values fall outside an enum it
declares.

fal's queue may take a key its model ignores, so a setting an operator made (or a model's
renamed input) would silently do nothing; this finds it before users do. It reads fal's
queue OpenAPI of each model (public, no key): the schema of the model's POST body.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from core.domain.catalog import ASPECT_RATIOS, MAX_IMAGES, Catalog, ModelSpec

Schema = dict[str, Any]


class FalUnreachable(Exception):
    """fal's published schemas could not be read (no network, fal down): nothing is known."""


async def catalog_mismatches(
    http: httpx.AsyncClient, openapi_url: str, catalog: Catalog
) -> list[str]:
    """One line per problem, for every model of the catalog and the prompt helper's endpoint;
    raises FalUnreachable."""
    helper = catalog.prompt_helper
    sent = {model.id: sent_inputs(model) for model in catalog.models}
    sent[helper.endpoint] = {key: [] for key in helper.arguments("words")}
    documents = await asyncio.gather(
        *(_published(http, openapi_url, endpoint) for endpoint in sent)
    )
    problems = []
    for (endpoint, inputs), document in zip(sent.items(), documents, strict=True):
        if document is None:
            problems.append(f"fal publishes no schema for {endpoint}: retired or misspelled?")
        else:
            problems.extend(_mismatches(endpoint, inputs, document))
    return problems


def sent_inputs(model: ModelSpec) -> dict[str, list[Any]]:
    """Every key kadr can send this model, with each value it can take where the catalog
    chooses it (defaults, mapped aspect ratios); a user's own values (prompt, seed, photo)
    are left out."""
    options = [
        {"aspect_ratio": ratio, "num_images": MAX_IMAGES, "seed": 1, "image_url": "url"}
        for ratio in ASPECT_RATIOS
    ]
    chosen = set(model.defaults) | ({model.aspect_ratio.key} if model.aspect_ratio else set())
    sent: dict[str, list[Any]] = {}
    for arguments in (model.arguments("prompt", option) for option in options):
        for key, value in arguments.items():
            values = sent.setdefault(key, [])
            if key in chosen and value not in values:
                values.append(value)
    return sent


async def _published(http: httpx.AsyncClient, openapi_url: str, model_id: str) -> Schema | None:
    try:
        response = await http.get(openapi_url, params={"endpoint_id": model_id})
    except httpx.HTTPError as exc:
        raise FalUnreachable(f"{type(exc).__name__} from {openapi_url}") from None
    if response.status_code == httpx.codes.NOT_FOUND:
        return None
    if not response.is_success:
        raise FalUnreachable(f"HTTP {response.status_code} from {openapi_url}")
    try:
        document: Schema = response.json()
    except ValueError:
        raise FalUnreachable(f"{openapi_url} did not answer JSON") from None
    return document


def _mismatches(endpoint: str, sent: dict[str, list[Any]], document: Schema) -> list[str]:
    schema = _input_schema(endpoint, document)
    if schema is None:
        return [f"fal's schema for {endpoint} names no input kadr can read"]
    properties: Schema = schema.get("properties") or {}
    problems = []
    for key, values in sent.items():
        spec = properties.get(key)
        if spec is None:
            problems.append(f"{endpoint} has no input {key!r}")
            continue
        allowed = _enum(spec, document)
        outside = [value for value in values if allowed is not None and value not in allowed]
        if outside:
            shown = ", ".join(json.dumps(value) for value in outside)
            problems.append(f"{endpoint}: {key} takes none of {shown}")
    return problems


def _input_schema(model_id: str, document: Schema) -> Schema | None:
    """The schema of the model's POST body, its `$ref` followed."""
    post = (document.get("paths") or {}).get(f"/{model_id}", {}).get("post") or {}
    content = (post.get("requestBody") or {}).get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    return _resolved(schema, document) if isinstance(schema, dict) else None


def _resolved(spec: Schema, document: Schema) -> Schema | None:
    reference = spec.get("$ref")
    if not isinstance(reference, str):
        return spec
    target: Any = document
    for part in reference.removeprefix("#/").split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    return target if isinstance(target, dict) else None


def _enum(spec: Schema, document: Schema) -> list[Any] | None:
    """The values an input takes when it is an enum (through `$ref`, `allOf` and `anyOf`),
    None when it takes more than an enum lists (free text, an object, a number)."""
    resolved = _resolved(spec, document)
    if resolved is None:
        return None
    if "enum" in resolved:
        return list(resolved["enum"])
    branches = resolved.get("anyOf") or resolved.get("oneOf") or resolved.get("allOf")
    if not branches:
        return None
    enums = [_enum(branch, document) for branch in branches]
    if None in enums:
        return None
    return [value for found in enums for value in found or []]
