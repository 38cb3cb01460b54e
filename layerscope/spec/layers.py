"""Spec stage, layer lists: `layers:` and `blocks:` → LayerSpec trees.

Expressions are resolved here, one layer at a time, because the scope depends on where a layer
sits: a block's layers see the model's vars plus the block's params, a repeated layer sees `i`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from layerscope.errors import Source, SpecError, did_you_mean
from layerscope.spec.catalog import check_argument, lookup, op_names, reserved_args, yaml_hint
from layerscope.spec.expr import Resolver
from layerscope.spec.ops import MULTI_INPUT_OPS
from layerscope.spec.source import YList, YMap

LAYER_KEYS = ("name", "op", "args", "from", "use", "layers", "repeat", "when", "tie")
BLOCK_KEYS = ("description", "params", "inputs", "layers")
NAME = re.compile(r"^[A-Za-z0-9_]+$")
# attributes of nn.Module that a submodule name would shadow
_MODULE_ATTRS = frozenset(
    "forward training parameters buffers children modules named_modules named_parameters state_dict "
    "train eval to cuda cpu type float double half apply zero_grad register_buffer add_module "
    "input_names nodes output".split()
)


@dataclass(frozen=True)
class Tie:
    """`tie: {weight: wte.weight}`: this layer's `param` is the parameter named `target`."""

    param: str
    target: str
    source: Source


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a spec: an op with its arguments, a container of layers, or a reuse of a layer."""

    name: str
    op: str  # a torch.nn class, a functional op, Sequential, a block's name, or "use"
    source: Source
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)  # a block's params, for containers
    inputs: tuple[str, ...] = ()  # `from:`; empty means the previous layer's output
    use: str | None = None  # call this already-defined layer again (its weights are shared)
    layers: tuple[LayerSpec, ...] = ()  # children of a Sequential, a block or a repeat
    arg_sources: dict[str, Source] = field(default_factory=dict)
    input_names: tuple[str, ...] = ("input",)  # what a container's children may name in `from:`
    output: str | None = None  # a container's result when it is not its last layer's (see `when:`)
    ties: tuple[Tie, ...] = ()

    @property
    def is_container(self) -> bool:
        return bool(self.layers)


@dataclass(frozen=True)
class BlockDef:
    """A reusable sub-graph from `blocks:`; its layers are parsed anew for each use."""

    name: str
    params: dict[str, Any]  # name → default; None means required
    param_sources: dict[str, Source]
    inputs: tuple[str, ...]
    layers: YList
    source: Source


def check_keys(node: YMap, allowed: tuple[str, ...], what: str) -> None:
    """An unknown key in `node` is an error at its position, with a did-you-mean."""
    reject_unknown(node, node, allowed, f"unknown {what} key {{key!r}}", f"{what} keys")


def reject_unknown(node: YMap, keys: Any, allowed: Any, message: str, listing: str) -> None:
    """The first of `keys` not in `allowed` is an error at its position, with a did-you-mean."""
    for key in keys:
        if key not in allowed:
            raise SpecError(
                message.format(key=key),
                source=node.key_sources[key],
                hint=did_you_mean(key, allowed) or f"{listing}: {', '.join(allowed) or 'none'}",
            )


LAYER_NAME_HINT = "dots are added by nesting"


def identifier(value: Any, what: str, where: Source, hint: str | None = None) -> str:
    """`value` when it is a name of letters, digits and _; else an error at `where`."""
    if not isinstance(value, str) or not NAME.match(value):
        raise SpecError(f"{what} {value!r} must be letters, digits or _", source=where, hint=yaml_hint(value) or hint)
    return value


def parse_blocks(raw: Any, where: Source) -> dict[str, BlockDef]:
    """`blocks:` → block definitions; their layers wait, unresolved, until a layer uses them."""
    if raw is None:
        return {}
    if not isinstance(raw, YMap):
        raise SpecError("blocks: must map block names to {params:, layers:}", source=where)
    blocks = {}
    for name, body in raw.items():
        key_where = raw.key_sources[name]
        identifier(name, "block name", key_where)
        if lookup(name) is not None or name in ("Sequential", "use"):
            raise SpecError(f"block name {name!r} is already an op", source=key_where, hint="pick another name")
        if not isinstance(body, YMap):
            raise SpecError(f"block {name} must be a mapping with layers:", source=raw.where(name))
        check_keys(body, BLOCK_KEYS, "block")
        params = body.get("params") or YMap()
        if not isinstance(params, YMap):
            raise SpecError("params: must map names to defaults (null: required)", source=body.where("params"))
        for param in params:
            identifier(param, "param name", params.key_sources[param])
        inputs = body.get("inputs", ["input"])
        if not isinstance(inputs, list) or not inputs:
            raise SpecError("inputs: must list the block's input names", source=body.where("inputs"))
        for i, input_name in enumerate(inputs):
            identifier(input_name, "input name", inputs.where(i) if isinstance(inputs, YList) else body.source)
        if not isinstance(body.get("layers"), YList) or not body["layers"]:
            raise SpecError(f"block {name} needs a non-empty layers: list", source=body.where("layers"))
        blocks[name] = BlockDef(
            name,
            dict(params),
            {k: params.where(k) for k in params},
            tuple(inputs),
            body["layers"],
            key_where,
        )
    return blocks


def resolve_keys(item: YMap, resolver: Resolver, keys: Any) -> YMap:
    """A copy of `item` with `${...}` resolved in `keys` only: nested layer lists resolve in their own scope."""
    return item.derive((k, resolver.resolve(v, item.where(k)) if k in keys else v) for k, v in item.items())


class LayerParser:
    """Parses layer lists, expanding blocks and repeats; one per model."""

    def __init__(self, blocks: dict[str, BlockDef], model_scope: Resolver):
        self.blocks = blocks
        self.model_scope = model_scope  # block params and layers see the model's vars, not the caller's
        self.expanding: list[str] = []  # blocks being expanded, outermost first

    def parse_list(
        self, raw: Any, where: Source, input_names: set[str], scope: Resolver
    ) -> tuple[tuple[LayerSpec, ...], str | None]:
        """A `layers:` list → its layers and, when its last layer is switched off, the name that is its output."""
        if not isinstance(raw, YList) or not raw:
            raise SpecError("layers: must be a non-empty list", source=getattr(raw, "source", where))
        for item, item_where in zip(raw, raw.item_sources, strict=False):
            if not isinstance(item, YMap):
                raise SpecError("each layer must be a mapping like {op: Linear, out_features: 10}", source=item_where)
        later = {item["name"]: item.source for item in raw if isinstance(item.get("name"), str)}
        defined: dict[str, Source] = {}
        counters: dict[str, int] = {}
        aliases: dict[str, str] = {}  # a switched-off layer → the name whose output stands for it
        layers: list[LayerSpec] = []
        previous = "input"  # what a layer without from: reads
        for item in raw:
            head = resolve_keys(item, scope, ("name", "when", "repeat", "from"))
            inputs = tuple(aliases.get(n, n) for n in _parse_from(head, input_names, defined, later))
            if not _enabled(head):
                if len(inputs) > 1:
                    raise SpecError(
                        "a layer switched off by when: passes its input on, so it takes one input",
                        source=head.where("from"),
                    )
                name = head.get("name")
                if name is not None:
                    defined[identifier(name, "layer name", head.where("name"), LAYER_NAME_HINT)] = head.source
                    aliases[name] = inputs[0] if inputs else previous
                previous = inputs[0] if inputs else previous
                continue
            layer = self.parse_layer(item, head, input_names, defined, counters, scope)
            layer = replace(layer, inputs=inputs or (() if previous == _last(layers) else (previous,)))
            defined[layer.name] = layer.source
            layers.append(layer)
            previous = layer.name
        if not layers:
            raise SpecError("every layer of this list is switched off by when:", source=where)
        return tuple(layers), (None if previous == layers[-1].name else previous)

    def parse_layer(
        self,
        item: YMap,
        head: YMap,
        input_names: set[str],
        defined: dict[str, Source],
        counters: dict[str, int],
        scope: Resolver,
    ) -> LayerSpec:
        """One enabled layer; `head` is `item` with name/when/repeat/from resolved."""
        reuse = "use" in item  # decided by the key: `op: use` is just an unknown op
        op = "use" if reuse else self._op(item)
        name = head.get("name")
        if name is None:
            name = _auto_name(item["use"] if reuse and isinstance(item["use"], str) else op, defined, counters)
        identifier(name, "layer name", head.where("name"), LAYER_NAME_HINT)
        if name in _MODULE_ATTRS or name in input_names:
            raise SpecError(f"layer name {name!r} is reserved", source=head.where("name"), hint="pick another name")
        if name in defined:
            raise SpecError(
                f"duplicate layer name {name!r} (first at line {defined[name].line})", source=head.where("name")
            )
        if "repeat" in head:
            return self._repeat(item, head, name, scope)
        resolved = resolve_keys(item, scope, set(item) - {"layers", "name", "when", "repeat", "from"})
        if reuse:
            return _use(resolved, name)
        if op == "Sequential":
            check_keys(resolved, ("name", "op", "from", "layers", "when"), "Sequential")
            children, output = self.parse_list(resolved.get("layers"), resolved.source, {"input"}, scope)
            return LayerSpec(name, op, resolved.source, layers=children, output=output)
        if "layers" in resolved:
            raise SpecError(f"layers: goes with op: Sequential, not {op}", source=resolved.key_sources["layers"])
        if op in self.blocks:
            return self._block(resolved, name, op, head)
        return self._op_layer(resolved, name, op, head)

    def _op(self, item: YMap) -> str:
        op = item.get("op", "Sequential" if "layers" in item else None)
        if op is None:
            raise SpecError(
                "layer has no op:", source=item.source, hint="e.g. op: Linear, op: relu, or use: other_layer"
            )
        if not isinstance(op, str):
            raise SpecError(f"op: must be a name, not {op!r}", source=item.where("op"), hint=yaml_hint(op))
        if op != "Sequential" and op not in self.blocks and lookup(op) is None:
            raise _unknown_op(op, item.where("op"), self.blocks)
        return op

    def _repeat(self, item: YMap, head: YMap, name: str, scope: Resolver) -> LayerSpec:
        """`repeat: N`: a Sequential named `name` whose children `0`..`N-1` are this layer, each with its own `i`."""
        count = head["repeat"]
        if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
            raise SpecError(
                f"repeat: must be a positive whole number, got {count!r}",
                source=head.where("repeat"),
                hint=yaml_hint(count),
            )
        body = item.derive((k, v) for k, v in item.items() if k not in ("name", "repeat", "from", "when"))
        children = []
        for i in range(count):
            child_scope = scope.child({"i": i}, {"i": head.where("repeat")})
            child_head = body.derive([*body.items(), ("name", str(i))])
            children.append(self.parse_layer(body, child_head, {"input"}, {}, {}, child_scope))
        return LayerSpec(name, "Sequential", item.source, layers=tuple(children))

    def _block(self, item: YMap, name: str, op: str, head: YMap) -> LayerSpec:
        """A use of a block: its layers parsed with the model's vars and this use's params."""
        block = self.blocks[op]
        if op in self.expanding:
            chain = " -> ".join([*self.expanding[self.expanding.index(op) :], op])
            raise SpecError(f"block {op} contains itself: {chain}", source=item.where("op"))
        if "args" in item:
            raise SpecError(f"block {op} takes named params, not args:", source=item.key_sources["args"])
        given = {k: v for k, v in item.items() if k not in LAYER_KEYS}
        reject_unknown(item, given, block.params, f"block {op} has no param {{key!r}}", f"{op} params")
        values = {**{k: self.model_scope.resolve(v, block.param_sources[k]) for k, v in block.params.items()}, **given}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise SpecError(
                f"block {op} needs {missing[0]}:", source=item.source, hint=f"{op} params: {', '.join(block.params)}"
            )
        wanted = len(head.get("from", [])) if isinstance(head.get("from"), list) else 1
        if wanted != len(block.inputs):
            raise SpecError(
                f"block {op} takes {len(block.inputs)} input(s) ({', '.join(block.inputs)}), but gets {wanted}",
                source=head.where("from") if "from" in head else item.source,
                hint="name them with from: [a, b]",
            )
        sources = {k: (item.where(k) if k in given else block.param_sources[k]) for k in values}
        self.expanding.append(op)
        try:
            children, output = self.parse_list(
                block.layers, block.source, {*block.inputs, "input"}, self.model_scope.child(values, sources)
            )
        finally:
            self.expanding.pop()
        return LayerSpec(name, op, item.source, kwargs=values, layers=children, input_names=block.inputs, output=output)

    def _op_layer(self, item: YMap, name: str, op: str, head: YMap) -> LayerSpec:
        info = lookup(op)
        assert info is not None  # checked by _op
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
            if isinstance(value, YMap) and "op" in value:  # a module passed as an argument
                value = self.parse_layer(value, value, {"input"}, {}, {}, self.model_scope)
            kwargs[key] = value
        _check_signature(info, op, args_raw, kwargs, item)
        sources = head.get("from")
        if isinstance(sources, list) and len(sources) > 1 and info.kind == "functional" and op not in MULTI_INPUT_OPS:
            raise SpecError(
                f"{op} takes one input, but from: names {len(sources)}",
                source=head.where("from"),
                hint="merge first with add, mul or cat",
            )
        ties = _parse_ties(item, op, info)
        return LayerSpec(name, op, item.source, tuple(args_raw), kwargs, arg_sources=arg_sources, ties=ties)


def _last(layers: list[LayerSpec]) -> str:
    return layers[-1].name if layers else "input"


def _enabled(head: YMap) -> bool:
    when = head.get("when", True)
    if not isinstance(when, bool):
        raise SpecError(
            f"when: must be true or false, got {when!r}",
            source=head.where("when"),
            hint='a condition such as "${i == 0}" or "${down}"',
        )
    return when


def _use(item: YMap, name: str) -> LayerSpec:
    extra = [k for k in item if k not in ("use", "name", "from", "when")]
    if extra:
        raise SpecError(
            f"a `use:` layer takes only name: and from:, not {extra[0]}:",
            source=item.key_sources[extra[0]],
            hint="`use:` calls an existing layer again with its own arguments",
        )
    if not isinstance(item["use"], str):
        raise SpecError("use: must name a layer defined earlier", source=item.where("use"))
    return LayerSpec(name, "use", item.source, use=item["use"])


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


def _auto_name(op: str, defined: dict[str, Source], counters: dict[str, int]) -> str:
    base = op.lower()
    while True:
        n = counters.get(base, 0)
        counters[base] = n + 1
        name = base if n == 0 else f"{base}_{n}"
        if name not in defined:
            return name


def _unknown_op(op: str, where: Source, blocks: dict[str, BlockDef]) -> SpecError:
    known = [*op_names(), "Sequential", *blocks]
    if "." in op:  # a module path: specs import nothing, but the class name alone may be an op
        name = {k.lower(): k for k in known}.get(op.rsplit(".", 1)[-1].lower())
        hint = (
            f"did you mean {name!r}? a spec names ops without a module path and imports nothing"
            if name
            else "a spec imports nothing: ops are torch.nn class names or functional ops"
        )
    else:
        hint = did_you_mean(op, known) or "ops are torch.nn class names, functional ops such as relu, or blocks:"
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
    reject_unknown(item, kwargs, info.signature.parameters, f"{op} has no argument {{key!r}}", f"{op} takes")
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
