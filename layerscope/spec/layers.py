"""Spec stage, layer lists: `layers:` and `blocks:` → LayerSpec trees.

Expressions are resolved here, one layer at a time, because the scope depends on where a layer
sits: a block's layers see the model's vars plus the block's params, a repeated layer sees `i`.
What a layer is lives in layer_spec.py, block definitions in blocks.py, op arguments in op_layers.py.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace
from typing import Any

from layerscope import limits
from layerscope.errors import Source, SpecError, did_you_mean
from layerscope.spec.blocks import BlockDef
from layerscope.spec.catalog import lookup, yaml_hint
from layerscope.spec.expr import Resolver
from layerscope.spec.layer_spec import (
    LAYER_NAME_HINT,
    MODULE_ATTRS,
    LayerSpec,
    check_keys,
    identifier,
    layer_name,
    resolve_keys,
)
from layerscope.spec.op_layers import op_layer, unknown_op
from layerscope.spec.source import YList, YMap
from layerscope.spec.tensors import TENSOR_KINDS, tensor_layer

POSITION_HINT = "unnamed layers here are named by position, as nn.Sequential names them: 0, 1, 2, …"


class LayerParser:
    """Parses layer lists, expanding blocks and repeats; one per model."""

    def __init__(self, blocks: dict[str, BlockDef], model_scope: Resolver):
        self.blocks = blocks
        self.model_scope = model_scope  # block params and layers see the model's vars, not the caller's
        self.expanding: list[str] = []  # blocks being expanded, outermost first
        self.count = 0  # layers made so far, against limits.LAYERS
        self.max_layers = limits.LAYERS.value  # read once: the check runs for every layer
        self.depth = 0  # layer lists open now, against limits.NESTING
        self.block_sizes: dict[str, int] = {}  # layers a block expanded to when last used

    def parse_list(
        self, raw: Any, where: Source, input_names: set[str], scope: Resolver, sequential: bool = False
    ) -> tuple[tuple[LayerSpec, ...], str | None]:
        """A `layers:` list → its layers and, when its last layer is switched off, the name that is its output.

        As torch's nn.Sequential names its children, an unnamed layer of a `sequential` list, or of
        a list that names none of its layers, is named by its position among the layers built.
        """
        _check_list(raw, where)
        self._within(self.count + len(raw), where, "this list takes the spec past")  # switched off or not
        limits.NESTING.check(self.depth + 1, f"layers nest more than {limits.NESTING.value} levels deep", where)
        self.depth += 1
        try:
            indexed = sequential or all(item.get("name") is None for item in raw)
            return self._parse_list(raw, where, input_names, scope, indexed)
        finally:
            self.depth -= 1

    def _parse_list(
        self, raw: Any, where: Source, input_names: set[str], scope: Resolver, indexed: bool
    ) -> tuple[tuple[LayerSpec, ...], str | None]:
        later = {layer_name(item["name"]): item.source for item in raw if isinstance(layer_name(item.get("name")), str)}
        defined: dict[str, Source] = {}
        counters: dict[str, int] = {}
        aliases: dict[str, str] = {}  # a switched-off layer → the name whose output stands for it
        layers: list[LayerSpec] = []
        previous = "input"  # what a layer without from: reads
        for item in raw:
            head = resolve_keys(item, scope, ("name", "when", "repeat", "from"))
            inputs = tuple(aliases.get(n, n) for n in _parse_from(head, input_names, defined, later, indexed))
            if not _enabled(head):
                previous = _switch_off(head, inputs, previous, defined, aliases)
                continue
            position = _position(head, len(layers), later) if indexed else None
            layer = self.parse_layer(item, head, input_names, defined, counters, scope, position)
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
        position: str | None = None,
    ) -> LayerSpec:
        """One enabled layer; `head` is `item` with name/when/repeat/from resolved; `position`, its name if it has none."""
        self.count += 1
        self._within(self.count, item.source)
        if any(kind in item for kind in TENSOR_KINDS):  # decided by the key, like use:
            name = _layer_name(head, next(k for k in TENSOR_KINDS if k in item), input_names, defined, counters)
            return tensor_layer(resolve_keys(item, scope, set(item) - {"name", "when"}), name)
        reuse = "use" in item  # decided by the key: `op: use` is just an unknown op
        op = "use" if reuse else _read_op(item, self.blocks)
        use = layer_name(item["use"]) if reuse else None
        base = use.replace(".", "_") if isinstance(use, str) else op
        name = _layer_name(head, position or base, input_names, defined, counters, auto=position is None)
        if "repeat" in head:
            return self._repeat(item, head, name, scope)
        resolved = resolve_keys(item, scope, set(item) - {"layers", "name", "when", "repeat", "from"})
        if reuse:
            return _use(resolved, name, alias=head.get("name") is not None or position is not None)
        if op == "Sequential":
            check_keys(resolved, ("name", "op", "from", "layers", "when"), "Sequential")
            children, output = self.parse_list(resolved.get("layers"), resolved.source, {"input"}, scope, True)
            return LayerSpec(name, op, resolved.source, layers=children, output=output)
        if "layers" in resolved:
            raise SpecError(f"layers: goes with op: Sequential, not {op}", source=resolved.key_sources["layers"])
        if op in self.blocks:
            return self._block(resolved, name, op, head)
        return op_layer(resolved, name, op, head, self._argument_layer)

    def _repeat(self, item: YMap, head: YMap, name: str, scope: Resolver) -> LayerSpec:
        """`repeat: N`: a Sequential named `name` whose children `0`..`N-1` are this layer, each with its own `i`."""
        count = _repeat_count(head)
        body = item.derive((k, v) for k, v in item.items() if k not in ("name", "repeat", "from", "when"))
        children = []
        expands = f"repeat: {count:,} expands the spec to more than"
        self._within(self.count + count, head.where("repeat"), expands)  # before any work
        for i in range(count):
            child_scope = scope.child({"i": i}, {"i": head.where("repeat")})
            child_head = body.derive([*body.items(), ("name", str(i))])
            before = self.count
            children.append(self.parse_layer(body, child_head, {"input"}, {}, {}, child_scope))
            if i == 0:  # each copy is about the size of the first: the whole, checked before the rest
                self._within(self.count + (count - 1) * (self.count - before), head.where("repeat"), expands)
        return LayerSpec(name, "Sequential", item.source, layers=tuple(children))

    def _block(self, item: YMap, name: str, op: str, head: YMap) -> LayerSpec:
        """A use of a block: its layers parsed with the model's vars and this use's params."""
        block = self.blocks[op]
        if op in self.expanding:
            chain = " -> ".join([*self.expanding[self.expanding.index(op) :], op])
            raise SpecError(f"block {op} contains itself: {chain}", source=item.where("op"))
        values, sources = block.bind(item, head, self.model_scope)
        self._within(self.count + self.block_sizes.get(op, 0), item.source)  # about the last use's size: first
        before = self.count
        self.expanding.append(op)
        try:
            children, output = self.parse_list(
                block.layers, block.source, {*block.inputs, "input"}, self.model_scope.child(values, sources)
            )
        finally:
            self.expanding.pop()
        self.block_sizes[op] = self.count - before
        return LayerSpec(name, op, item.source, kwargs=values, layers=children, input_names=block.inputs, output=output)

    def _within(self, layers: int, where: Source, what: str = "the spec expands to more than") -> None:
        """Past the layer budget at `layers` layers: an error at `where`, `what` starting its message."""
        if layers > self.max_layers:
            raise limits.LAYERS.error(f"{what} {self.max_layers:,} layers", where)

    def _argument_layer(self, value: YMap) -> LayerSpec:
        # `value` was resolved along with the layer holding it; it is parsed alone, outside any list
        return self.parse_layer(value, value, {"input"}, {}, {}, self.model_scope)


def _check_list(raw: Any, where: Source) -> None:
    if not isinstance(raw, YList) or not raw:
        raise SpecError("layers: must be a non-empty list", source=getattr(raw, "source", where))
    for item, item_where in zip(raw, raw.item_sources, strict=False):
        if not isinstance(item, YMap):
            raise SpecError("each layer must be a mapping like {op: Linear, out_features: 10}", source=item_where)


def _parse_from(
    item: YMap, input_names: set[str], defined: dict[str, Source], later: dict[str, Source], indexed: bool = False
) -> tuple[str, ...]:
    if "from" not in item:
        return ()
    raw = item["from"]
    names = [layer_name(n) for n in raw] if isinstance(raw, list) else [layer_name(raw)]
    if not names or not all(isinstance(n, str) for n in names):
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
                or (POSITION_HINT if indexed else "layers may only take inputs from layers above them"),
            )
    return tuple(names)


def _enabled(head: YMap) -> bool:
    when = head.get("when", True)
    if not isinstance(when, bool):
        raise SpecError(
            f"when: must be true or false, got {when!r}",
            source=head.where("when"),
            hint='a condition such as "${i == 0}" or "${down}"',
        )
    return when


def _switch_off(
    head: YMap, inputs: tuple[str, ...], previous: str, defined: dict[str, Source], aliases: dict[str, str]
) -> str:
    """A layer switched off by `when:` passes its input on: its name, if any, stands for that input."""
    if len(inputs) > 1:
        raise SpecError(
            "a layer switched off by when: passes its input on, so it takes one input",
            source=head.where("from"),
        )
    passed = inputs[0] if inputs else previous
    name = layer_name(head.get("name"))
    if name is not None:
        defined[identifier(name, "layer name", head.where("name"), LAYER_NAME_HINT)] = head.source
        aliases[name] = passed
    return passed


def _last(layers: list[LayerSpec]) -> str:
    return layers[-1].name if layers else "input"


def _read_op(item: YMap, blocks: dict[str, BlockDef]) -> str:
    op = item.get("op", "Sequential" if "layers" in item else None)
    if op is None:
        raise SpecError("layer has no op:", source=item.source, hint="e.g. op: Linear, op: relu, or use: other_layer")
    if not isinstance(op, str):
        raise SpecError(f"op: must be a name, not {op!r}", source=item.where("op"), hint=yaml_hint(op))
    if op != "Sequential" and op not in blocks and lookup(op) is None:
        raise unknown_op(op, item.where("op"), blocks)
    return op


def _position(head: YMap, index: int, later: dict[str, Source]) -> str | None:
    """The name an unnamed layer takes in a list named by position: `index`, unless written on another layer."""
    if head.get("name") is not None:
        return None
    name = str(index)
    if name in later:
        raise SpecError(
            f"this unnamed layer is named {name!r} by its position, but the layer at line {later[name].line} is called that",
            source=head.source,
            hint="name one of them otherwise",
        )
    return name


def _layer_name(
    head: YMap,
    base: str,
    input_names: set[str],
    defined: dict[str, Source],
    counters: dict[str, int],
    auto: bool = True,
) -> str:
    """The name written under name:, else `base` (a position), or one made from it (the op, or the layer a use: calls)."""
    name = layer_name(head.get("name"))
    if name is None:
        name = auto_name(base, defined, counters) if auto else base
    identifier(name, "layer name", head.where("name"), LAYER_NAME_HINT)
    if name in MODULE_ATTRS or (name.startswith("__") and name.endswith("__")) or name in input_names:
        why = "an input's name" if name in input_names else "an attribute every torch module has"
        raise SpecError(f"layer name {name!r} is reserved: {why}", source=head.where("name"), hint="pick another name")
    if name in defined:
        raise SpecError(
            f"duplicate layer name {name!r} (first at line {defined[name].line})", source=head.where("name")
        )
    return name


def auto_name(op: str, defined: Container[str], counters: dict[str, int]) -> str:
    """The automatic name of an unnamed layer: its op (or the layer a use: calls) in lower case, then
    numbered `_1`, `_2`, … past the names `defined` so far; the importer names layers by it too."""
    base = op.lower()
    while True:
        n = counters.get(base, 0)
        counters[base] = n + 1
        name = base if n == 0 else f"{base}_{n}"
        if name not in defined:
            return name


def _use(item: YMap, name: str, alias: bool) -> LayerSpec:
    extra = [k for k in item if k not in ("use", "name", "from", "when")]
    if extra:
        raise SpecError(
            f"a `use:` layer takes only name: and from:, not {extra[0]}:",
            source=item.key_sources[extra[0]],
            hint="`use:` calls an existing layer again with its own arguments",
        )
    use = layer_name(item["use"])
    if not isinstance(use, str):
        raise SpecError("use: must name a layer defined earlier", source=item.where("use"))
    return LayerSpec(name, "use", item.source, use=use, alias=alias)


def _repeat_count(head: YMap) -> int:
    count = head["repeat"]
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise SpecError(
            f"repeat: must be a positive whole number, got {count!r}",
            source=head.where("repeat"),
            hint=yaml_hint(count),
        )
    return count
