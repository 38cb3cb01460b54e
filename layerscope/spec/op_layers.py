"""Spec stage, one op layer: its arguments checked against the op's signature, its `tie:`s, unknown ops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from layerscope.errors import Source, SpecError, close_matches
from layerscope.spec.catalog import RESERVED_ARGS, check_argument, lookup, op_names, synonym, yaml_hint
from layerscope.spec.expr import MAX_INT
from layerscope.spec.layer_spec import LAYER_KEYS, LayerSpec, Tie, reject_unknown
from layerscope.spec.ops import MULTI_INPUT_OPS
from layerscope.spec.source import YList, YMap

TWO_OR_MORE = frozenset({"matmul"})  # multi-input ops that mean nothing with one input
DOCS_OPS = '"Functional ops"'  # the section of docs/spec.md that lists them

# parses a layer given as an argument's value (e.g. TransformerEncoder's encoder_layer:) in the model's scope
ArgumentLayer = Callable[[YMap], LayerSpec]


def op_layer(item: YMap, name: str, op: str, head: YMap, argument_layer: ArgumentLayer) -> LayerSpec:
    """A layer of a torch.nn class or functional op; `item` is resolved, `head` has its from:."""
    info = lookup(op)
    assert info is not None  # checked when the op was read
    args_raw = item.get("args", YList())
    if not isinstance(args_raw, YList):
        raise SpecError(
            "args: must be a list of positional arguments", source=item.where("args"), hint="e.g. args: [1, 6, 5]"
        )
    kwargs = _keyword_args(item, op, argument_layer)
    _check_signature(info, op, args_raw, kwargs, item)
    sources = head.get("from")
    if isinstance(sources, list) and len(sources) > 1 and info.kind == "functional" and op not in MULTI_INPUT_OPS:
        raise SpecError(
            f"{op} takes one input, but from: names {len(sources)}",
            source=head.where("from"),
            hint="merge first with add, mul or cat",
        )
    if op in TWO_OR_MORE and not (isinstance(sources, list) and len(sources) > 1):
        raise SpecError(
            f"{op} multiplies two or more tensors: name them in from:",
            source=head.where("from") if "from" in head else item.where("op"),
            hint=f"e.g. from: [hidden, weight] for hidden @ weight; see docs/spec.md, {DOCS_OPS}",
        )
    ties = _parse_ties(item, op, info)
    return LayerSpec(name, op, item.source, tuple(args_raw), kwargs, ties=ties)


def unknown_op(op: str, where: Source, blocks: Any) -> SpecError:
    """The error for an op that is no torch.nn class, functional op, Sequential or one of `blocks`:
    a suggestion by meaning (dense → Linear), then by spelling, and where the ops are listed."""
    known = [*op_names(), "Sequential", *blocks]
    if "." in op:  # a module path: specs import nothing, but the class name alone may be an op
        name = {k.lower(): k for k in known}.get(op.rsplit(".", 1)[-1].lower())
        hint = (
            f"did you mean {name!r}? a spec names ops without a module path and imports nothing"
            if name
            else "a spec imports nothing: ops are torch.nn class names or functional ops"
        )
        return SpecError(f"unknown op {op!r}", source=where, hint=hint)
    meant = [m for m in (synonym(op),) if m is not None]
    close = [*meant, *(c for c in close_matches(op, known) if c not in meant)][:3]
    guess = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    listed = f"functional ops (docs/spec.md, {DOCS_OPS})"
    names = list(blocks)
    where_to_look = (
        f"ops are torch.nn class names, {listed} or this file's blocks: {', '.join(names[:5])}"
        + (", …" if len(names) > 5 else "")
        if names
        else f"ops are torch.nn class names or {listed}"
    )
    return SpecError(f"unknown op {op!r}", source=where, hint=guess + where_to_look)


def _keyword_args(item: YMap, op: str, argument_layer: ArgumentLayer) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in item.items():
        if key in LAYER_KEYS:
            continue
        if key in RESERVED_ARGS:
            raise SpecError(
                f"{op} argument {key!r} is set by layerscope",
                source=item.key_sources[key],
                hint="use --device / --dtype on the command line",
            )
        if isinstance(value, YMap) and "op" in value:  # a module passed as an argument
            value = argument_layer(value)
        kwargs[key] = value
    return kwargs


def _check_signature(info: Any, op: str, args: YList, kwargs: dict[str, Any], item: YMap) -> None:
    reject_unknown(item, kwargs, info.signature.parameters, f"{op} has no argument {{key!r}}", f"{op} takes")
    try:
        bound = info.signature.bind_partial(*args, **kwargs)
    except TypeError as e:
        raise SpecError(f"{op}: {e}", source=item.where("args"), hint=info.usage) from None
    positional = list(info.signature.parameters)[: len(args)]
    for name, value in bound.arguments.items():
        problem = None if isinstance(value, LayerSpec) else check_argument(op, info.signature.parameters[name], value)
        big = _beyond_int64(value)
        if big is not None:
            problem = f"{op} {name}: {big} does not fit in a 64-bit integer"
        if problem:
            where = item.where(name) if name in kwargs else args.where(positional.index(name))
            raise SpecError(problem, source=where, hint=yaml_hint(value))


def _beyond_int64(value: Any) -> int | None:
    """The first integer in `value` (or in its lists) that int64 cannot hold, else None."""
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, int) and not -MAX_INT - 1 <= item <= MAX_INT:
            return item
        if isinstance(item, list):
            found = _beyond_int64(item)
            if found is not None:
                return found
    return None


def _parse_ties(item: YMap, op: str, info: Any) -> tuple[Tie, ...]:
    raw = item.get("tie")
    if raw is None:
        return ()
    if not isinstance(raw, YMap) or not raw:
        raise SpecError("tie: must map parameter names to others, e.g. {weight: wte.weight}", source=item.where("tie"))
    if info.kind != "module" or info.is_lazy:
        kind = "a lazy module's parameters do not exist before it runs" if info.is_lazy else f"{op} has no parameters"
        raise SpecError(f"tie: cannot tie {op}: {kind}", source=item.where("tie"), hint="tie a layer with fixed sizes")
    ties = []
    for param, target in raw.items():
        if not isinstance(target, str) or not target:
            raise SpecError("tie: targets are parameter names such as wte.weight", source=raw.where(param))
        ties.append(Tie(str(param), target, raw.where(param)))
    return tuple(ties)
