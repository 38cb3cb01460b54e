"""Spec stage, one model: YAML text → a validated ModelSpec (its inputs and layers) that remembers file:line:col."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerscope.errors import Source, SpecError, UsageError, did_you_mean
from layerscope.spec.blocks import parse_blocks
from layerscope.spec.catalog import yaml_hint
from layerscope.spec.expr import MAX_INT, Resolver
from layerscope.spec.layer_spec import LayerSpec, check_keys, identifier, resolve_keys
from layerscope.spec.layers import LayerParser
from layerscope.spec.shapes import DTYPES, check_elements, dtype_hint, format_shape
from layerscope.spec.source import YList, YMap, load_documents, read_spec_text

MODEL_KEYS = ("name", "description", "input", "vars", "blocks", "layers")
INPUT_KEYS = ("name", "shape", "dtype", "range")


@dataclass(frozen=True)
class InputSpec:
    """One model input: its shape, dtype and, for token ids, the range of values."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    value_range: tuple[int, int] | None
    source: Source


@dataclass(frozen=True)
class ModelSpec:
    """A whole model as written in a spec file."""

    name: str
    description: str
    inputs: tuple[InputSpec, ...]
    layers: tuple[LayerSpec, ...]
    source: Source
    output: str | None = None  # the layer whose output is the model's, when not the last (see `when:`)
    vars: Mapping[str, Any] = field(default_factory=dict)  # every var, evaluated (--set included)
    # the same document parsed again with more --set overrides: what a diagnosis checks a --set hint with
    with_vars: Callable[[Mapping[str, Any]], ModelSpec] | None = field(default=None, compare=False, repr=False)


def load_spec(path: Path, model: str | None = None, overrides: Mapping[str, Any] | None = None) -> ModelSpec:
    """Read, parse and validate the spec at `path` (one document, or the one named `model`).

    `overrides` replace vars of the same name (the CLI's --set)."""
    file = str(path)
    docs = [d for d in load_documents(read_spec_text(path), file) if d is not None]
    if not docs:
        raise SpecError(
            "the file holds no model", source=Source(file, 1, 1), hint="see configs/lenet.yaml for an example"
        )
    for doc in docs:
        if not isinstance(doc, YMap):
            raise SpecError(
                "a spec must be a mapping with name:, input: and layers:",
                source=getattr(doc, "source", Source(file, 1, 1)),
            )
    if model is None and len(docs) > 1:
        names = [str(d.get("name")) for d in docs]
        raise SpecError(
            f"the file holds {len(docs)} models: {', '.join(names)}",
            source=docs[1].source,
            hint="pick one with --model NAME",
        )
    if model is not None:
        chosen = [d for d in docs if d.get("name") == model]
        if not chosen:
            names = [str(d.get("name")) for d in docs]
            raise SpecError(
                f"no model named {model!r}",
                source=docs[0].source,
                hint=did_you_mean(model, names) or f"models here: {', '.join(names)}",
            )
        docs = chosen
    return parse_model(docs[0], default_name=path.stem, overrides=overrides)


def parse_model(doc: YMap, default_name: str, overrides: Mapping[str, Any] | None = None) -> ModelSpec:
    """Validate one YAML document as a model spec."""
    check_keys(doc, MODEL_KEYS, "model")
    original = doc
    raw_vars = doc.get("vars") or YMap()
    if not isinstance(raw_vars, dict):
        raise SpecError("vars: must be a mapping of names to numbers", source=doc.where("vars"))
    sources = {k: raw_vars.where(k) for k in raw_vars} if isinstance(raw_vars, YMap) else {}
    for key, value in (overrides or {}).items():
        if key not in raw_vars:
            raise UsageError(
                f"--set {key}: the model has no var {key!r}",
                hint=did_you_mean(key, raw_vars) or f"vars: {', '.join(raw_vars) or 'none'}",
            )
        raw_vars = {**raw_vars, key: value}
        sources[key] = Source("--set", 1, 1)
    resolver = Resolver(raw_vars, sources)
    values = resolver.all_vars()  # every var is evaluated, so a broken one is reported even where unused
    blocks = parse_blocks(doc.get("blocks"), doc.where("blocks"))
    layers_raw = doc.get("layers")
    doc = resolve_keys(doc, resolver, set(doc) - {"layers", "blocks"})
    name = doc.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise SpecError("name: must be a non-empty string", source=doc.where("name"), hint=yaml_hint(name))
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise SpecError("description: must be a string", source=doc.where("description"))
    inputs = _parse_inputs(doc)
    if "layers" not in doc:
        raise SpecError(
            "the model has no layers:",
            source=doc.source,
            hint="add a list of layers, e.g. - {op: Linear, out_features: 10}",
        )
    input_names = {i.name for i in inputs} | {"input"}
    parser = LayerParser(blocks, resolver)
    layers, output = parser.parse_list(layers_raw, doc.where("layers"), input_names, resolver)

    def with_vars(more: Mapping[str, Any]) -> ModelSpec:
        return parse_model(original, default_name, {**(overrides or {}), **more})

    return ModelSpec(name, description, inputs, layers, doc.source, output, values, with_vars)


def _parse_inputs(doc: YMap) -> tuple[InputSpec, ...]:
    raw = doc.get("input")
    if raw is None:
        return ()
    items = raw if isinstance(raw, YList) else [raw]
    sources = raw.item_sources if isinstance(raw, YList) else [doc.where("input")]
    inputs = []
    for i, (item, where) in enumerate(zip(items, sources, strict=False)):
        if not isinstance(item, YMap):
            raise SpecError("each input must be a mapping like {shape: [1, 3, 32, 32]}", source=where)
        check_keys(item, INPUT_KEYS, "input")
        name = item.get("name", "input" if len(items) == 1 else f"input{i}")
        identifier(name, "input name", item.where("name"))
        if "shape" not in item:
            raise SpecError("input needs shape:", source=item.source, hint="e.g. shape: [1, 3, 32, 32]")
        shape = parse_shape_value(item["shape"], item.where("shape"))
        dtype = item.get("dtype", "float32")
        if dtype not in DTYPES:
            raise SpecError(f"unknown dtype {dtype!r}", source=item.where("dtype"), hint=dtype_hint(str(dtype)))
        value_range = None
        if "range" in item:
            r = item["range"]
            if not (
                isinstance(r, list) and len(r) == 2 and all(_is_int(v) and abs(v) <= MAX_INT for v in r) and r[0] < r[1]
            ):
                raise SpecError("range: must be [low, high) with integers low < high", source=item.where("range"))
            value_range = (int(r[0]), int(r[1]))
        inputs.append(InputSpec(name, shape, dtype, value_range, item.source))
    return tuple(inputs)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_shape_value(value: Any, where: Source) -> tuple[int, ...]:
    """A shape written as a YAML list of positive integers."""
    if not isinstance(value, list) or not value:
        raise SpecError(
            f"shape must be a non-empty list of sizes, not {value!r}", source=where, hint="e.g. [1, 3, 32, 32]"
        )
    for dim in value:
        if not _is_int(dim) or dim <= 0:
            raise SpecError(
                f"shape {list(value)} has {dim!r}; every size must be a positive integer",
                source=where,
                hint=yaml_hint(dim),
            )
    shape = tuple(int(d) for d in value)
    check_elements(shape, f"shape {format_shape(shape)[:40]}", where)
    return shape
