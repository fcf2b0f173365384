"""The client's typed models (``offload._models``) against the API contract: the committed
snapshot of ``GET /v1/openapi.json`` here, the running daemon's document in ``test_client.py``.
A field missing or extra, required or not, of another type, or an enum with other values fails."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Union

import pytest

from offload import _client, _models

ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = (
    ROOT
    / "crates/server/src/http/snapshots"
    / "offload_server__http__openapi__tests__the_document_with_a_token.snap"
)


def snapshot_document() -> dict[str, Any]:
    """The contract as the server's snapshot test committed it (insta: a header, then JSON)."""
    text = SNAPSHOT.read_text()
    doc: dict[str, Any] = json.loads(text.split("---\n", 2)[2])
    return doc


def _schema_type(s: dict[str, Any], schemas: dict[str, Any]) -> str:
    """A schema as a normal form: ``str``, ``int``, ``bool``, ``any``, ``list[X]``,
    ``Optional[X]``, a schema name, ``dict`` for a union of object shapes."""
    if "$ref" in s:
        return str(s["$ref"]).rsplit("/", 1)[-1]
    for key in ("oneOf", "anyOf"):
        if key in s:
            parts = [p for p in s[key] if p.get("type") != "null"]
            nullable = len(parts) < len(s[key])
            inner = _schema_type(parts[0], schemas) if len(parts) == 1 else "dict"
            return f"Optional[{inner}]" if nullable else inner
    t = s.get("type")
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        inner = _schema_type({**s, "type": rest[0]}, schemas)
        return f"Optional[{inner}]" if "null" in t else inner
    if t == "array":
        return f"list[{_schema_type(s.get('items', {}), schemas)}]"
    return {"string": "str", "integer": "int", "boolean": "bool", "object": "dict"}.get(str(t), "any")


def _merged(schema: dict[str, Any]) -> dict[str, Any]:
    """A ``oneOf`` of object shapes (``Backoff``: one per ``kind``) as one object: every
    shape's fields, required when every shape requires them, a ``kind`` enum of all kinds."""
    shapes = schema.get("oneOf")
    if not shapes or not all(s.get("type") == "object" for s in shapes):
        return schema
    props: dict[str, Any] = {}
    for s in shapes:
        for k, v in s.get("properties", {}).items():
            if "enum" in v and k in props:
                props[k] = {**v, "enum": [*props[k]["enum"], *v["enum"]]}
            else:
                props.setdefault(k, v)
    required = set.intersection(*(set(s.get("required", [])) for s in shapes))
    return {"type": "object", "properties": props, "required": sorted(required)}


def _names() -> dict[int, str]:
    named: dict[int, str] = {}
    for name, model in {**_models.SCHEMAS, **_models.ENUMS}.items():
        named[id(model)] = name
    return named


def _py_type(t: Any, named: dict[int, str]) -> str:
    """A model's annotation in the same normal form."""
    if id(t) in named:
        return named[id(t)]
    if t is Any:
        return "any"
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is Union:
        parts = [a for a in args if a is not type(None)]
        inner = _py_type(parts[0], named) if len(parts) == 1 else "union"
        return f"Optional[{inner}]" if len(parts) < len(args) else inner
    if origin is list:
        return f"list[{_py_type(args[0], named)}]"
    if origin is dict or t is dict:
        return "dict"
    return {str: "str", int: "int", bool: "bool"}.get(t, repr(t))


def differences(doc: dict[str, Any]) -> list[str]:
    """Every disagreement between the models and the contract ``doc``."""
    schemas = doc["components"]["schemas"]
    named = _names()
    out: list[str] = []
    for name, model in _models.SCHEMAS.items():
        schema = schemas.get(name)
        if schema is None:
            out.append(f"{name}: no such schema in the contract")
            continue
        schema = _merged(schema)
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        hints = typing.get_type_hints(model)
        if set(hints) != set(props):
            out.append(
                f"{name}: fields only in the model {sorted(set(hints) - set(props))}, "
                f"only in the contract {sorted(set(props) - set(hints))}"
            )
        if set(model.__required_keys__) != required & set(hints):
            out.append(
                f"{name}: required in the model {sorted(model.__required_keys__)}, "
                f"in the contract {sorted(required)}"
            )
        for field in sorted(set(hints) & set(props)):
            want = _schema_type(props[field], schemas)
            have = _py_type(hints[field], named)
            if "enum" in props[field]:  # an inline enum: the model's Literal has its values
                want = f"enum{sorted(props[field]['enum'])}"
                have = f"enum{sorted(typing.get_args(hints[field]))}"
            if want != have:
                out.append(f"{name}.{field}: the model says {have}, the contract {want}")
    for name, lit in _models.ENUMS.items():
        schema = schemas.get(name)
        if schema is None or sorted(schema.get("enum", [])) != sorted(typing.get_args(lit)):
            out.append(
                f"{name}: the model's values {sorted(typing.get_args(lit))}, "
                f"the contract's {None if schema is None else sorted(schema.get('enum', []))}"
            )
    submit = schemas["Submit"]["properties"]
    fields = set(typing.get_args(_models.SubmitField))
    if fields != set(submit) - {"job", "params"}:
        out.append(f"Submit: the client's options {sorted(fields)}, the contract's {sorted(set(submit) - {'job', 'params'})}")
    if set(_client.SUBMIT_FIELDS) != fields:
        out.append(f"the client sends {sorted(_client.SUBMIT_FIELDS)}, SubmitField lists {sorted(fields)}")
    return out


def responses(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, str]]:
    """Each (method, path)'s JSON answer schemas by status."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, r in op.get("responses", {}).items():
                s = r.get("content", {}).get("application/json", {}).get("schema", {})
                if "$ref" in s:
                    out.setdefault((method.upper(), path), {})[status] = s["$ref"].rsplit("/", 1)[-1]
    return out


# What each client method returns, by the contract's (method, path, status).
CLIENT_ANSWERS = {
    ("POST", "/v1/jobs", "201"): "Submitted",
    ("POST", "/v1/jobs/batch", "201"): "BatchSubmitted",
    ("GET", "/v1/jobs/{id}", "200"): "Job",
    ("GET", "/v1/jobs", "200"): "JobPage",
    ("GET", "/v1/jobs/{id}/result", "200"): "JobResult",
    ("GET", "/v1/jobs/{id}/result", "202"): "JobPending",
    ("POST", "/v1/jobs/{id}/cancel", "200"): "JobStateView",
    ("POST", "/v1/jobs/{id}/retry", "200"): "JobStateView",
}


def test_the_models_match_the_committed_contract() -> None:
    doc = snapshot_document()
    assert differences(doc) == []
    answers = responses(doc)
    for (method, path, status), schema in CLIENT_ANSWERS.items():
        assert answers[(method, path)][status] == schema, (method, path, status)


def test_the_check_sees_a_contract_that_moved() -> None:
    """The comparison is not vacuous: a field added, one made optional, a type changed and an
    enum value added to the contract are each reported."""
    doc = snapshot_document()
    schemas = doc["components"]["schemas"]
    schemas["Submitted"]["properties"]["queue_position"] = {"type": "integer"}
    schemas["JobError"]["required"] = ["name"]
    schemas["Attempt"]["properties"]["pid"] = {"type": "string"}
    schemas["JobState"]["enum"] = [*schemas["JobState"]["enum"], "paused"]
    schemas["Submit"]["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}
    found = "\n".join(differences(doc))
    for what in ("Submitted: fields only", "JobError: required", "Attempt.pid", "JobState:", "Submit:"):
        assert what in found, (what, found)


@pytest.mark.parametrize(
    "method, annotation",
    [
        ("submit", "Submitted"),
        ("submit_batch", "list[Submitted]"),
        ("status", "Job"),
        ("list", "JobPage"),
        ("cancel", "JobStateView"),
        ("retry", "JobStateView"),
        ("result", "ResultAnswer"),
    ],
)
def test_the_client_methods_return_the_models(method: str, annotation: str) -> None:
    for cls in (_client.Client, _client.AsyncClient):
        hints = typing.get_type_hints(getattr(cls, method), vars(_client))
        assert hints["return"] == eval(annotation, vars(_models)), (cls.__name__, method)
