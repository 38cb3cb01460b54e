"""Spec stage: YAML text → validated ModelSpec dataclasses that remember file:line:col."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerscope.catalog import check_argument, lookup, op_names, reserved_args, yaml_hint
from layerscope.errors import Source, SpecError, did_you_mean
from layerscope.expr import Resolver
from layerscope.yamlsrc import YList, YMap, load_documents, read_spec_text

MODEL_KEYS = ("name", "description", "input", "layers", "vars")
LAYER_KEYS = ("name", "op", "args", "from", "use", "layers")
INPUT_KEYS = ("name", "shape", "dtype", "range")
DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
# attributes of nn.Module that a submodule name would shadow
_MODULE_ATTRS = frozenset(
    "forward training parameters buffers children modules named_modules named_parameters state_dict "
    "train eval to cuda cpu type float double half apply zero_grad register_buffer add_module "
    "input_names nodes".split()
)


@dataclass(frozen=True)
class InputSpec:
    """One model input: its shape, dtype and, for token ids, the range of values."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    value_range: tuple[int, int] | None
    source: Source


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a spec: an op with its arguments, or a reuse of another layer."""

    name: str
    op: str
    source: Source
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # `from:`; empty means the previous layer's output
    use: str | None = None  # call this already-defined layer again (its weights are shared)
    layers: tuple[LayerSpec, ...] = ()  # children of a nested Sequential
    arg_sources: dict[str, Source] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """A whole model as written in a spec file."""

    name: str
    description: str
    inputs: tuple[InputSpec, ...]
    layers: tuple[LayerSpec, ...]
    vars: dict[str, Any]
    source: Source


def load_spec(path: Path, model: str | None = None) -> ModelSpec:
    """Read, parse and validate the spec at `path` (one document, or the one named `model`)."""
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
    return parse_model(docs[0], default_name=path.stem)


def parse_model(doc: YMap, default_name: str) -> ModelSpec:
    """Validate one YAML document as a model spec."""
    _check_keys(doc, MODEL_KEYS, "model")
    raw_vars = doc.get("vars") or YMap()
    if not isinstance(raw_vars, dict):
        raise SpecError("vars: must be a mapping of names to numbers", source=doc.where("vars"))
    resolver = Resolver(raw_vars, getattr(raw_vars, "value_sources", {}))
    variables = resolver.all_vars()
    doc = resolver.resolve(doc, doc.source)
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
    layers = _parse_layers(doc["layers"], doc.where("layers"), input_names, scope="")
    return ModelSpec(name, description, inputs, layers, variables, doc.source)


def _check_keys(node: YMap, allowed: tuple[str, ...], what: str) -> None:
    _reject_unknown(node, node, allowed, f"unknown {what} key {{key!r}}", f"{what} keys")


def _reject_unknown(node: YMap, keys: Any, allowed: Any, message: str, listing: str) -> None:
    """The first of `keys` not in `allowed` is an error at its position, with a did-you-mean."""
    for key in keys:
        if key not in allowed:
            raise SpecError(
                message.format(key=key),
                source=node.key_sources[key],
                hint=did_you_mean(key, allowed) or f"{listing}: {', '.join(allowed) or 'none'}",
            )


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
        _check_keys(item, INPUT_KEYS, "input")
        name = item.get("name", "input" if len(items) == 1 else f"input{i}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise SpecError(
                f"input name {name!r} must be letters, digits or _", source=item.where("name"), hint=yaml_hint(name)
            )
        if "shape" not in item:
            raise SpecError("input needs shape:", source=item.source, hint="e.g. shape: [1, 3, 32, 32]")
        shape = parse_shape_value(item["shape"], item.where("shape"))
        dtype = item.get("dtype", "float32")
        if dtype not in DTYPES:
            raise SpecError(f"unknown dtype {dtype!r}", source=item.where("dtype"), hint=dtype_hint(str(dtype)))
        value_range = None
        if "range" in item:
            r = item["range"]
            if not (isinstance(r, list) and len(r) == 2 and all(_is_int(v) for v in r) and r[0] < r[1]):
                raise SpecError("range: must be [low, high) with integers low < high", source=item.where("range"))
            value_range = (int(r[0]), int(r[1]))
        inputs.append(InputSpec(name, shape, dtype, value_range, item.source))
    return tuple(inputs)


_DTYPE_ALIASES = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
}


def dtype_hint(name: str) -> str:
    """Did-you-mean for a dtype, knowing torch's aliases (long is int64)."""
    if name.removeprefix("torch.") in _DTYPE_ALIASES:
        return f"did you mean {_DTYPE_ALIASES[name.removeprefix('torch.')]!r}?"
    return did_you_mean(name.removeprefix("torch."), DTYPES) or f"dtypes: {', '.join(DTYPES)}"


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
    return tuple(int(d) for d in value)


def _parse_layers(raw: Any, where: Source, outer_names: set[str], scope: str) -> tuple[LayerSpec, ...]:
    if not isinstance(raw, YList) or not raw:
        raise SpecError("layers: must be a non-empty list", source=getattr(raw, "source", where))
    defined: dict[str, Source] = {}
    counters: dict[str, int] = {}
    layers = []
    for item, item_where in zip(raw, raw.item_sources, strict=False):
        if not isinstance(item, YMap):
            raise SpecError("each layer must be a mapping like {op: Linear, out_features: 10}", source=item_where)
    later = {item["name"]: item.source for item in raw if isinstance(item.get("name"), str)}
    for item in raw:
        layer = _parse_layer(item, outer_names, defined, counters, scope, later)
        defined[layer.name] = layer.source
        layers.append(layer)
    return tuple(layers)


def _auto_name(op: str, defined: dict[str, Source], counters: dict[str, int]) -> str:
    base = op.lower()
    while True:
        n = counters.get(base, 0)
        counters[base] = n + 1
        name = base if n == 0 else f"{base}_{n}"
        if name not in defined:
            return name


def _parse_layer(
    item: YMap,
    input_names: set[str],
    defined: dict[str, Source],
    counters: dict[str, int],
    scope: str,
    later: dict[str, Source] | None = None,
) -> LayerSpec:
    reuse = "use" in item  # decided by the key: `op: use` is just an unknown op
    if reuse:
        extra = [k for k in item if k not in ("use", "name", "from")]
        if extra:
            raise SpecError(
                f"a `use:` layer takes only name: and from:, not {extra[0]}:",
                source=item.key_sources[extra[0]],
                hint="`use:` calls an existing layer again with its own arguments",
            )
        target = item["use"]
        if not isinstance(target, str):
            raise SpecError("use: must name a layer defined earlier", source=item.where("use"))
        op = "use"
    else:
        op = item.get("op", "Sequential" if "layers" in item else None)
        if op is None:
            raise SpecError(
                "layer has no op:", source=item.source, hint="e.g. op: Linear, op: relu, or use: other_layer"
            )
        if not isinstance(op, str):
            raise SpecError(f"op: must be a name, not {op!r}", source=item.where("op"), hint=yaml_hint(op))
        if op != "Sequential" and lookup(op) is None:
            raise _unknown_op(op, item.where("op"))
    name = item.get("name")
    if name is None:
        name = _auto_name(item["use"] if reuse else op, defined, counters)
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(
            f"layer name {name!r} must be letters, digits or _",
            source=item.where("name"),
            hint=yaml_hint(name) or "dots are added by nesting",
        )
    if name in _MODULE_ATTRS or name in input_names:
        raise SpecError(f"layer name {name!r} is reserved", source=item.where("name"), hint="pick another name")
    if name in defined:
        raise SpecError(
            f"duplicate layer name {name!r} (first at line {defined[name].line})", source=item.where("name")
        )
    inputs = _parse_from(item, input_names, defined, later or {})
    if reuse:
        return LayerSpec(name, "use", item.source, inputs=inputs, use=item["use"])
    if op == "Sequential":
        _check_keys(item, ("name", "op", "from", "layers"), "Sequential")
        children = _parse_layers(item.get("layers"), item.source, {"input"}, scope=f"{scope}{name}.")
        return LayerSpec(name, op, item.source, inputs=inputs, layers=children)
    if "layers" in item:
        raise SpecError(f"layers: goes with op: Sequential, not {op}", source=item.key_sources["layers"])
    info = lookup(op)
    assert info is not None  # checked before naming
    args_raw = item.get("args", YList())
    if not isinstance(args_raw, YList):
        raise SpecError(
            "args: must be a list of positional arguments", source=item.where("args"), hint="e.g. args: [1, 6, 5]"
        )
    arg_sources = {f"args[{i}]": s for i, s in enumerate(args_raw.item_sources)}
    kwargs: dict[str, Any] = {}
    for key, value in item.items():
        if key in LAYER_KEYS:
            continue
        arg_sources[key] = item.where(key)
        if key in reserved_args():
            raise SpecError(
                f"{op} argument {key!r} is set by layerscope",
                source=item.key_sources[key],
                hint="use --device / --dtype on the command line",
            )
        if isinstance(value, YMap) and "op" in value:
            value = _parse_layer(value, {"input"}, {}, {}, scope)  # a module passed as an argument
        kwargs[key] = value
    _check_signature(info, op, args_raw, kwargs, item)
    if len(inputs) > 1 and info.kind == "functional" and op not in ("add", "mul", "cat"):
        raise SpecError(
            f"{op} takes one input, but from: names {len(inputs)}",
            source=item.where("from"),
            hint="merge first with add, mul or cat",
        )
    return LayerSpec(name, op, item.source, tuple(args_raw), kwargs, inputs, arg_sources=arg_sources)


def _unknown_op(op: str, where: Source) -> SpecError:
    known = [*op_names(), "Sequential"]
    if "." in op:  # a module path: specs import nothing, but the class name alone may be an op
        name = {k.lower(): k for k in known}.get(op.rsplit(".", 1)[-1].lower())
        hint = (
            f"did you mean {name!r}? a spec names ops without a module path and imports nothing"
            if name
            else "a spec imports nothing: ops are torch.nn class names or functional ops"
        )
    else:
        hint = did_you_mean(op, known) or "ops are torch.nn class names or functional ops such as relu, flatten"
    return SpecError(f"unknown op {op!r}", source=where, hint=hint)


def _parse_from(
    item: YMap, input_names: set[str], defined: dict[str, Source], later: dict[str, Source]
) -> tuple[str, ...]:
    if "from" not in item:
        return ()
    raw = item["from"]
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise SpecError("from: must be a layer name or a list of them", source=item.where("from"))
    for ref in names:
        if ref not in defined and ref in later:
            raise SpecError(
                f"from: refers to {ref!r}, which is defined below it (line {later[ref].line})",
                source=item.where("from"),
                hint="layers run in file order; move it above",
            )
        if ref not in defined and ref not in input_names:
            raise SpecError(
                f"from: refers to unknown layer {ref!r}",
                source=item.where("from"),
                hint=did_you_mean(ref, [*defined, *input_names])
                or "layers may only take inputs from layers above them",
            )
    return tuple(names)


def _check_signature(info: Any, op: str, args: YList, kwargs: dict[str, Any], item: YMap) -> None:
    _reject_unknown(item, kwargs, info.signature.parameters, f"{op} has no argument {{key!r}}", f"{op} takes")
    try:
        bound = info.signature.bind_partial(*args, **kwargs)
    except TypeError as e:
        raise SpecError(f"{op}: {e}", source=item.where("args"), hint=info.usage) from None
    positional = list(info.signature.parameters)[: len(args)]
    for name, value in bound.arguments.items():
        problem = None if isinstance(value, LayerSpec) else check_argument(op, info.signature.parameters[name], value)
        if problem:
            where = item.where(name) if name in kwargs else args.where(positional.index(name))
            raise SpecError(problem, source=where, hint=yaml_hint(value))
