"""JSON Schema of a spec file, for editors: `layerscope schema > spec.schema.json`.

Made from the same tables the spec stage checks against (model, input, block and layer keys; every
op and its constructor's arguments), so it cannot drift from them. It is looser than the spec
stage in one way: a block's name may stand for an op, and any value may be a `${...}` expression,
so it guides autocompletion and catches typos in keys, while `layerscope` itself reports the rest.
"""

from __future__ import annotations

import inspect
from typing import Any

from layerscope.spec.catalog import expected_kinds, lookup, op_names
from layerscope.spec.layer_spec import BLOCK_KEYS, LAYER_KEYS, NAME
from layerscope.spec.model import INPUT_KEYS, MODEL_KEYS
from layerscope.spec.shapes import DTYPES
from layerscope.spec.tensors import INITS

SCHEMA_ID = "https://layerscope.dev/spec.schema.json"
EXPRESSION = {"type": "string", "pattern": r"\$\{", "description": "an expression, e.g. ${2 * width}"}
_JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def _value(*schemas: dict[str, Any]) -> dict[str, Any]:
    """A value of one of `schemas`, or an expression."""
    return {"anyOf": [*schemas, EXPRESSION]}


def _argument(param: inspect.Parameter) -> dict[str, Any]:
    """What an op's argument takes: its annotated kinds, their lists (kernel_size: [3, 3]), null."""
    kinds = [{"type": _JSON_TYPES[k]} for k in sorted(expected_kinds(param))]
    if "Module" in str(param.annotation):
        kinds.append({"$ref": "#/$defs/layer"})  # encoder_layer: {op: TransformerEncoderLayer, ...}
    if not kinds:
        return {}
    schema = _value(*kinds, {"type": "array"}, {"type": "null"})
    if param.default is not param.empty and isinstance(param.default, (int, float, str, bool)):
        schema["default"] = param.default
    return schema


def _op_arguments() -> list[dict[str, Any]]:
    """Per op, its arguments as properties, so an editor completes `out_features` after `op: Linear`."""
    rules = []
    for op in op_names():
        info = lookup(op)
        if info is None or not info.signature.parameters:
            continue
        properties = {name: _argument(p) for name, p in info.signature.parameters.items()}
        rules.append(
            {"if": {"properties": {"op": {"const": op}}, "required": ["op"]}, "then": {"properties": properties}}
        )
    return rules


_NAME = {"type": "string", "pattern": NAME.pattern}
_LAYER_NAME = {"anyOf": [_NAME, {"type": "integer", "minimum": 0}]}  # `name: 0`, as torch names children
_LAYER_LIST = {"type": "array", "items": {"$ref": "#/$defs/layer"}}


def _tensor(flag: str, description: str) -> dict[str, Any]:
    """A free tensor's mapping: `param:` (with requires_grad) or `buffer:` (with persistent)."""
    return {
        "type": "object",
        "description": description,
        "properties": {
            "shape": {"type": "array", "items": _value({"type": "integer", "minimum": 1})},
            "init": _value({"enum": list(INITS)}),
            "seed": _value({"type": "integer", "minimum": 0}),
            flag: _value({"type": "boolean"}),
        },
        "required": ["shape"],
        "additionalProperties": False,
    }


def _layer() -> dict[str, Any]:
    """A layer: the keys every layer takes, then each op's own arguments."""
    names = {"anyOf": [_LAYER_NAME, {"type": "array", "items": _LAYER_NAME}]}
    layer = {
        "type": "object",
        "properties": {
            "name": _LAYER_NAME,
            "op": {
                "anyOf": [{"enum": op_names()}, _NAME],
                "description": "a torch.nn class, a functional op, or a block",
            },
            "args": {"type": "array", "description": "positional arguments of the op"},
            "from": {**names, "description": "the layer(s) or input(s) this one reads; default: the one above"},
            "use": {**_LAYER_NAME, "description": "call an earlier layer again: one set of weights"},
            "layers": {**_LAYER_LIST, "description": "a nested Sequential"},
            "repeat": _value({"type": "integer", "minimum": 0}),
            "when": _value({"type": "boolean"}),
            "tie": {"type": "object", "additionalProperties": {"type": "string"}},
            "param": _tensor("requires_grad", "a learned tensor of its own, e.g. {shape: [20, 20], init: uniform}"),
            "buffer": _tensor(
                "persistent", "a tensor that is not learned; persistent: false keeps it out of the state_dict"
            ),
        },
        "allOf": _op_arguments(),
    }
    assert set(layer["properties"]) == set(LAYER_KEYS)  # type: ignore[arg-type]
    return layer


def _input() -> dict[str, Any]:
    """One model input: shape, dtype, range of token ids."""
    input_ = {
        "type": "object",
        "properties": {
            "name": _NAME,
            "shape": {"type": "array", "items": _value({"type": "integer", "minimum": 0})},
            "dtype": {"enum": list(DTYPES)},
            "range": {"type": "array", "items": _value({"type": "integer"}), "minItems": 2, "maxItems": 2},
        },
        "required": ["shape"],
        "additionalProperties": False,
    }
    assert set(input_["properties"]) == set(INPUT_KEYS)  # type: ignore[arg-type]
    return input_


def _block() -> dict[str, Any]:
    """A block definition under blocks:."""
    block = {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "params": {"type": "object", "description": "the block's parameters and defaults (null: required)"},
            "inputs": {"type": "array", "items": _NAME},
            "layers": _LAYER_LIST,
        },
        "required": ["layers"],
        "additionalProperties": False,
    }
    assert set(block["properties"]) == set(BLOCK_KEYS)  # type: ignore[arg-type]
    return block


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one spec document."""
    model = {
        "name": _NAME,
        "description": {"type": "string"},
        "input": {"anyOf": [{"$ref": "#/$defs/input"}, {"type": "array", "items": {"$ref": "#/$defs/input"}}]},
        "vars": {"type": "object", "description": "named values for ${...} expressions; --set overrides them"},
        "blocks": {"type": "object", "additionalProperties": {"$ref": "#/$defs/block"}},
        "layers": _LAYER_LIST,
    }
    assert set(model) == set(MODEL_KEYS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "layerscope model spec",
        "type": "object",
        "properties": model,
        "required": ["layers"],
        "additionalProperties": False,
        "$defs": {"layer": _layer(), "input": _input(), "block": _block()},
    }
