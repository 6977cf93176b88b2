"""Each known model's input schema (schemas.json, copied from what fal publishes), checked at
submit and served as fal serves it.

A key the model does not have, a value outside an enum, a wrong JSON type or a missing required
input is refused with 422 in the shape of fal's validation errors (FastAPI's `detail` list).
Where fal itself checks an input (its gateway, or the app when it runs) is not documented, and
an app may ignore a key it does not know; the stand-in refuses at submit all the same, because
a key fal ignores is a setting kadr believes it made. Models without a schema here are not
checked (the benchmarks' and the demo's own ids). A retired model is not found, as on fal.
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

_PATH = Path(__file__).with_name("schemas.json")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
_TYPE_ERRORS = {
    "string": ("string_type", "a valid string"),
    "integer": ("int_type", "a valid integer"),
    "number": ("float_type", "a valid number"),
    "boolean": ("bool_type", "a valid boolean"),
    "array": ("list_type", "a valid list"),
    "object": ("dict_type", "a valid dictionary"),
}
Schema = dict[str, Any]
Problem = dict[str, Any]


@cache
def _data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_PATH.read_text())
    return data


def schemas() -> dict[str, Schema]:
    """Model id → its input schema (an OpenAPI object schema)."""
    models: dict[str, Schema] = _data()["models"]
    return models


def retired(model_id: str) -> bool:
    """fal no longer serves this model: its submits are answered 404."""
    return model_id in _data()["retired"]


def input_problems(model_id: str, arguments: dict[str, Any]) -> list[Problem]:
    """What fal's validation would list for this input; empty when the model has no schema."""
    schema = schemas().get(model_id)
    if schema is None:
        return []
    properties: dict[str, Schema] = schema["properties"]
    problems = [
        _problem(name, "missing", "Field required", arguments)
        for name in schema["required"]
        if name not in arguments
    ]
    for name, value in arguments.items():
        spec = properties.get(name)
        if spec is None:
            problems.append(
                _problem(name, "extra_forbidden", "Extra inputs are not permitted", value)
            )
        elif (problem := _value_problem(name, spec, value)) is not None:
            problems.append(problem)
    return problems


def openapi(model_id: str) -> dict[str, Any] | None:
    """The queue OpenAPI document fal publishes for one endpoint, cut to its input schema."""
    schema = schemas().get(model_id)
    if schema is None:
        return None
    title = schema["title"]
    body = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{title}"}}}}
    return {
        "openapi": "3.0.4",
        "info": {
            "title": "Queue OpenAPI for " + model_id,
            "x-fal-metadata": {"endpointId": model_id},
        },
        "components": {"schemas": {title: {"type": "object", **schema}}},
        "paths": {f"/{model_id}": {"post": {"requestBody": {"required": True, **body}}}},
    }


def _value_problem(name: str, spec: Schema, value: Any) -> Problem | None:
    """The first thing wrong with `value`; of a union, what its last branch says."""
    branches = spec.get("anyOf")
    if branches:
        found = [_value_problem(name, branch, value) for branch in branches]
        return None if None in found else found[-1]
    kind = spec["type"]
    if not isinstance(value, _TYPES[kind]) or (isinstance(value, bool) and kind != "boolean"):
        error_type, what = _TYPE_ERRORS[kind]
        return _problem(name, error_type, f"Input should be {what}", value)
    allowed = spec.get("enum")
    if allowed is not None and value not in allowed:
        expected = _one_of([repr(option) for option in allowed])
        return _problem(name, "enum", f"Input should be {expected}", value, expected=expected)
    return None


def _one_of(options: list[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"


def _problem(name: str, error_type: str, msg: str, value: Any, **ctx: Any) -> Problem:
    problem = {"loc": ["body", name], "msg": msg, "type": error_type, "input": value}
    return {**problem, "ctx": ctx} if ctx else problem
