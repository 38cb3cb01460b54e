"""Importer, the layers made into a spec: names, blocks and `repeat:`.

- Names: a list that names some of its layers (a class's forward) leaves its function calls and
  second calls (`use:`) unnamed, and the spec names them as layers/layers.py does (`relu`, `relu_1`);
  the names are worked out here the same way, for the `from:`s that refer to them.
- Blocks: every call of a container class of the user's becomes a use of a block. Calls of one class
  whose layers differ only in numbers, text or true/false share one block, with a param for each
  value that differs (values that differ together share a param). Calls whose layers are another's
  without some named ones (a BasicBlock without its downsample) share its block, those layers
  switched by a `when:` param; calls that differ in anything else get a block each, `Class`, `Class_2`.
- `repeat:`: an nn.Sequential whose children are uses of one block becomes that block repeated,
  each param that changes with the index written as `${a if i == 0 else b}`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from layerscope.importer.walk import Ref, Use
from layerscope.spec.catalog import lookup, op_names
from layerscope.spec.layers import auto_name

_STRUCTURE = frozenset({"name", "op", "from", "use", "layers", "repeat", "param", "buffer"})
_MAX_EXPRESSION = 200  # spec/expr.py's limit on one expression


def name_layers(layers: list[dict[str, Any]], positional: bool, names: dict[int, str] | None = None) -> None:
    """Give each layer of a list the name the spec will give it, and turn `Ref`s into names: in a
    positional list (an nn.Sequential) every layer's position; else, for the unnamed ones, the spec's
    automatic name (op in lower case, numbered), written out where the spec's would differ. `names`
    gets each layer's name in its list, by the id of its dict."""
    names = {} if names is None else names
    explicit = {layer["name"] for layer in layers if "name" in layer}
    defined: set[str] = set()
    counters: dict[str, int] = {}
    for position, layer in enumerate(layers):
        if positional:
            names[id(layer)] = str(position)
        elif "name" in layer:
            names[id(layer)] = layer["name"]
        else:
            base = layer["use"].replace(".", "_") if "use" in layer else str(layer["op"]).lower()
            name = auto_name(base, defined, counters)
            if name in explicit:  # a later layer holds it: the spec would refuse the second
                name = _fresh(base, explicit | defined)
                layer["name"] = name
            names[id(layer)] = name
        defined.add(names[id(layer)])
    for layer in layers:
        if "from" in layer:
            sources = layer["from"] if isinstance(layer["from"], list) else [layer["from"]]
            resolved = [names[id(s.layer)] if isinstance(s, Ref) else s for s in sources]
            layer["from"] = resolved if isinstance(layer["from"], list) else resolved[0]
        if "layers" in layer:
            name_layers(layer["layers"], positional=True, names=names)
        if isinstance(layer.get("op"), Use):
            layer["op"].site = layer
            name_layers(layer["op"].layers, not any("name" in x for x in layer["op"].layers), names)


def _fresh(base: str, taken: set[str]) -> str:
    n = 1
    while f"{base}_x{n}" in taken:
        n += 1
    return f"{base}_x{n}"


def make_blocks(uses: list[Use]) -> dict[str, dict[str, Any]]:
    """Replace each `Use` in the layers by a use of a block, and return the blocks, innermost first."""
    blocks: dict[str, dict[str, Any]] = {}
    taken = set(op_names())
    pending = list(uses)
    while pending:
        ready = [u for u in pending if not _holds_use(u.layers)]
        if not ready:
            raise AssertionError("a block that holds itself")
        groups: dict[tuple[str, str], list[Use]] = defaultdict(list)
        for use in _with_optional_layers(ready):
            groups[use.cls, _structure(use.layers)].append(use)
        for (cls, _), members in groups.items():
            name = _fresh_block(cls, taken)
            blocks[name] = _block(name, members)
        done = {id(u) for u in ready}
        pending = [u for u in pending if id(u) not in done]
    return blocks


class _Any:
    """The value of an argument of a layer switched off (`when: false`): whatever the others need."""

    def __repr__(self) -> str:
        return "any"


ANY = _Any()


def _with_optional_layers(uses: list[Use]) -> list[Use]:
    """Calls of one class whose layers are another's without some named ones (a BasicBlock without
    its downsample) rewritten as that other's layers, those switched off with `when:`, so that both
    share one block and a stack of them can be one `repeat:`."""
    by_class: dict[str, dict[str, list[Use]]] = defaultdict(dict)
    for use in uses:
        by_class[use.cls].setdefault(_structure(use.layers), []).append(use)
    for shapes in by_class.values():
        if len(shapes) != 2:
            continue
        fuller, other = sorted(shapes.values(), key=lambda group: -len(group[0].layers))
        template = fuller[0].layers
        extras = _extras(template, other[0].layers)
        if extras is None:
            continue
        try:
            rewritten = [_as_template(template, extras, use.layers) for use in other]
        except _NoMerge:
            continue
        for use, layers in zip(other, rewritten, strict=True):
            use.layers = layers
        for use in fuller:
            for i in extras:
                use.layers[i]["when"] = True
    return uses


class _NoMerge(Exception):
    pass


def _skeleton(layers: list[dict[str, Any]]) -> str:
    """The layers' names, ops and wiring, without their arguments."""

    def bare(layer: dict[str, Any]) -> dict[str, Any]:
        return {k: [bare(x) for x in v] if k == "layers" else v for k, v in layer.items() if k in _STRUCTURE}

    return json.dumps([bare(layer) for layer in layers], default=str)


def _default(op: Any, key: str) -> Any:
    info = lookup(op) if isinstance(op, str) else None
    parameter = info.signature.parameters.get(key) if info is not None else None
    if parameter is None or parameter.default is parameter.empty:
        raise _NoMerge
    return parameter.default


def _extras(template: list[dict[str, Any]], layers: list[dict[str, Any]]) -> list[int] | None:
    """The positions of the named layers `template` has and `layers` lacks, when `layers` is
    `template` without them (each `from:` one names read as what it reads); else None."""
    names = {layer.get("name") for layer in layers}
    extras = [i for i, layer in enumerate(template) if layer.get("name") not in names]
    if not extras or any("name" not in template[i] or "when" in template[i] for i in extras):
        return None
    reads: dict[str, Any] = {}
    for i in extras:
        before = template[i - 1].get("name") if i else "input"
        reads[template[i]["name"]] = template[i].get("from", before)
    kept = [dict(layer) for i, layer in enumerate(template) if i not in extras]
    for layer in kept:
        if "from" in layer:
            sources = layer["from"] if isinstance(layer["from"], list) else [layer["from"]]
            sources = [reads.get(x, x) for x in sources]
            layer["from"] = sources if isinstance(layer["from"], list) else sources[0]
    if _defaults_dropped(kept) is None or _defaults_dropped(layers) is None:
        return None
    return extras if _skeleton(_defaults_dropped(kept)) == _skeleton(_defaults_dropped(layers)) else None


def _defaults_dropped(layers: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """`layers` without the `from:`s that name the layer before (or, first, `input`); None when a
    layer before one is unnamed (its name is the spec's to make)."""
    result = []
    for i, layer in enumerate(layers):
        before = layers[i - 1].get("name") if i else "input"
        if "from" in layer and layer["from"] == before:
            if before is None:
                return None
            layer = {k: v for k, v in layer.items() if k != "from"}
        result.append(layer)
    return result


def _as_template(
    template: list[dict[str, Any]], extras: list[int], layers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`layers` written as `template`: its own values in the layers both have, the extras switched off."""
    mine = iter(layers)
    result = []
    for i, layer in enumerate(template):
        if i in extras:
            result.append({**_off(layer), "when": False})
        else:
            own = next(mine)
            if any(k not in layer and k not in _STRUCTURE for k in own):
                raise _NoMerge
            made = {}
            for key, value in layer.items():
                if key == "layers":
                    made[key] = own[key]
                elif key in _STRUCTURE:
                    made[key] = value
                else:
                    made[key] = own[key] if key in own else _default(layer.get("op"), key)
            result.append(made)
    return result


def _off(layer: dict[str, Any]) -> dict[str, Any]:
    """A copy of `layer` whose arguments are ANY."""
    copy = {}
    for key, value in layer.items():
        if key == "layers":
            copy[key] = [_off(x) for x in value]
        elif key not in _STRUCTURE and isinstance(value, (bool, int, float, str)):
            copy[key] = ANY
        else:
            copy[key] = value
    return copy


def _fresh_block(cls: str, taken: set[str]) -> str:
    name, n = cls, 1
    while name in taken:
        n += 1
        name = f"{cls}_{n}"
    taken.add(name)
    return name


def _holds_use(value: Any) -> bool:
    if isinstance(value, Use):
        return True
    if isinstance(value, dict):
        return any(_holds_use(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_use(v) for v in value)
    return False


def _leaves(layers: list[dict[str, Any]], path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Each number, text or true/false argument in `layers` (nested `layers:` too), with where it is;
    lists stay part of the structure, since a block param holds one value."""
    found: list[tuple[tuple[Any, ...], Any]] = []
    for i, layer in enumerate(layers):
        for key, value in layer.items():
            if key == "layers":
                found += _leaves(value, (*path, i, "layers"))
            elif key not in _STRUCTURE and isinstance(value, (bool, int, float, str, _Any)):
                found.append(((*path, i, key), value))
    return found


def _structure(layers: list[dict[str, Any]]) -> str:
    """The layers with every argument value blanked: calls with equal structures share a block."""
    blank = {path: None for path, _ in _leaves(layers)}
    return json.dumps(_replaced(layers, blank), default=str)


def _replaced(layers: list[dict[str, Any]], new: dict[tuple[Any, ...], Any], path: tuple[Any, ...] = ()) -> list[Any]:
    result = []
    for i, layer in enumerate(layers):
        copy = {}
        for key, value in layer.items():
            if key == "layers":
                copy[key] = _replaced(value, new, (*path, i, "layers"))
            else:
                copy[key] = new.get((*path, i, key), value)
        result.append(copy)
    return result


def _block(name: str, members: list[Use]) -> dict[str, Any]:
    """One block for calls of one structure: a param for each argument whose value differs between them."""
    leaves = [dict(_leaves(m.layers)) for m in members]
    params: dict[str, tuple[Any, ...]] = {}  # param name → its value in each call
    new: dict[tuple[Any, ...], str] = {}
    # the values every call has first, so that a layer switched off in some takes a param of theirs
    for path in sorted(leaves[0], key=lambda path: any(leaf[path] is ANY for leaf in leaves)):
        values = tuple(leaf[path] for leaf in leaves)
        known = [v for v in values if v is not ANY]
        if all(_equal(v, known[0]) for v in known):
            new[path] = known[0]  # the same wherever the layer is on
            continue
        same = next(
            (p for p, vs in params.items() if all(_matches(a, b) for a, b in zip(vs, values, strict=True))), None
        )
        if same is None:
            same = _param_name(path, members[0].layers, params)
            params[same] = tuple(known[0] if v is ANY else v for v in values)
        new[path] = "${" + same + "}"
    body: dict[str, Any] = {}
    if params:
        body["params"] = dict.fromkeys(params)
    if members[0].inputs != ["input"]:
        body["inputs"] = members[0].inputs
    body["layers"] = _replaced(members[0].layers, new)
    for i, member in enumerate(members):
        parent = member.site
        parent.pop("op")
        parent["op"] = name
        for param, values in params.items():
            parent[param] = values[i]
        if "from" in parent:
            parent["from"] = parent.pop("from")  # after the params, as the docs write it
    return body


def _equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _matches(param: Any, value: Any) -> bool:
    return value is ANY or _equal(param, value)


def _param_name(path: tuple[Any, ...], layers: list[dict[str, Any]], taken: dict[str, Any]) -> str:
    """The argument's own name (`out_channels`), else prefixed with its layer's (`conv2_out_channels`)."""
    layer = layers[path[0]]
    for j in range(2, len(path) - 1, 2):
        layer = layer["layers"][path[j]]
    key = str(path[-1])
    base = (
        f"with_{layer.get('name')}"
        if key == "when"
        else f"{layer.get('name', 'p')}_{key}"
        if key in taken or key == "i"
        else key
    )
    name, n = base, 1
    while name in taken or not name.isidentifier():
        n += 1
        name = f"{base}_{n}" if base.isidentifier() else f"p_{n}"
    return name


def fold_repeats(layers: list[dict[str, Any]], blocks: dict[str, dict[str, Any]]) -> None:
    """Each `layers:` list of uses of one block, unnamed and reading the one before, as a `repeat:`
    (in `layers` and in every block's layers)."""
    for body in blocks.values():
        _fold(body["layers"], blocks)
    _fold(layers, blocks)


def _fold(layers: list[dict[str, Any]], blocks: dict[str, dict[str, Any]]) -> None:
    for layer in layers:
        if "layers" in layer:
            _fold(layer["layers"], blocks)
            repeated = _repeated(layer["layers"], blocks)
            if repeated is not None:
                del layer["layers"]
                layer.update(repeated)


def _repeated(children: list[dict[str, Any]], blocks: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if len(children) < 2 or any("name" in c or "from" in c or c.get("op") not in blocks for c in children):
        return None
    op = children[0]["op"]
    if any(c["op"] != op for c in children):
        return None
    folded: dict[str, Any] = {"op": op, "repeat": len(children)}
    for param in blocks[op].get("params", {}):
        values = [c[param] for c in children]
        if all(_equal(v, values[0]) for v in values):
            folded[param] = values[0]
            continue
        if not all(isinstance(v, (int, float, bool)) for v in values):
            return None
        folded[param] = _by_index(values)
        if len(folded[param]) > _MAX_EXPRESSION:
            return None
    return folded


def _by_index(values: list[Any]) -> str:
    """`${v0 if i == 0 else v1}`: the value at each index, the last one for every index past the changes."""
    last = len(values) - 1
    while last > 0 and _equal(values[last - 1], values[last]):
        last -= 1
    parts = [f"{_number(values[i])} if i == {i} else " for i in range(last)]
    return "${" + "".join(parts) + _number(values[last]) + "}"


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
