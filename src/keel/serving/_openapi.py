"""OpenAPI request schemas generated from a model's signature: every payload shape lists the
model's columns with their JSON types, so ``/docs`` and client generators know the inputs."""

from __future__ import annotations

from typing import Any

from keel.models import ColSpec, Signature
from keel.serving._payload import spec_kind


def _scalar(spec: ColSpec) -> dict[str, Any]:
    kind = spec_kind(spec.dtype)
    schema: dict[str, Any]
    if kind == "f":
        schema = {"type": ["number", "null"]}
    elif kind in "iu":
        schema = {"type": "integer"}
    elif kind == "b":
        schema = {"type": "boolean"}
    elif kind == "M":
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": "string"}
    schema["description"] = f"{spec.dtype}"
    return schema


def _nested(spec: ColSpec, depth: int) -> dict[str, Any]:
    schema = _scalar(spec)
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


def invocations_schema(signature: Signature) -> dict[str, Any]:
    """The ``/invocations`` body: one of MLflow's four payload shapes."""
    if signature.kind == "tensor":
        spec = signature.inputs[0]
        tensor = _nested(spec, max(1, len(spec.shape or (0,))))
        return {
            "oneOf": [
                {"type": "object", "required": [k], "properties": {k: tensor}}
                for k in ("inputs", "instances")
            ]
        }
    specs = [s for s in signature.inputs if s.name is not None]
    names = [s.name for s in specs]
    record = {
        "type": "object",
        "required": names,
        "properties": {s.name: _scalar(s) for s in specs},
        "additionalProperties": False,
    }
    columnar = {
        "type": "object",
        "required": names,
        "properties": {s.name: {"type": "array", "items": _scalar(s)} for s in specs},
    }
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"type": "array", "items": {"type": "string", "enum": names}},
            "data": {
                "type": "array",
                "items": {"type": "array", "prefixItems": [_scalar(s) for s in specs]},
            },
        },
    }
    records = {"type": "array", "items": record}
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["dataframe_split"],
                "properties": {"dataframe_split": split},
            },
            {
                "type": "object",
                "required": ["dataframe_records"],
                "properties": {"dataframe_records": records},
            },
            {"type": "object", "required": ["inputs"], "properties": {"inputs": columnar}},
            {"type": "object", "required": ["instances"], "properties": {"instances": records}},
        ]
    }


def v2_datatype(spec: ColSpec) -> str:
    kind = spec_kind(spec.dtype)
    if kind == "f":
        return "FP32" if spec.dtype == "float32" else "FP64"
    if kind in "iu":
        bits = spec.dtype.lower().lstrip("uint").lstrip("int") or "64"
        return f"{'UINT' if kind == 'u' else 'INT'}{bits}"
    if kind == "b":
        return "BOOL"
    return "BYTES"


def v2_tensors(signature: Signature) -> list[dict[str, Any]]:
    """The model's inputs as v2 tensor metadata (``name``, ``datatype``, ``shape``)."""
    if signature.kind == "tensor":
        spec = signature.inputs[0]
        return [{"name": "input", "datatype": v2_datatype(spec), "shape": list(spec.shape or ())}]
    return [
        {"name": s.name, "datatype": v2_datatype(s), "shape": [-1]}
        for s in signature.inputs
        if s.name is not None
    ]


def v2_schema(signature: Signature) -> dict[str, Any]:
    """The ``/v2/models/{name}/infer`` body: one input tensor per column."""
    items = []
    for meta in v2_tensors(signature):
        spec = next((s for s in signature.inputs if s.name == meta["name"]), signature.inputs[0])
        items.append(
            {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"const": meta["name"]},
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "datatype": {"const": meta["datatype"]},
                    "data": {"type": "array", "items": _scalar(spec)},
                },
            }
        )
    return {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": {"anyOf": items}},
        },
    }


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
