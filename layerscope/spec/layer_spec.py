"""Spec stage, what a parsed layer is: LayerSpec and Tie, the layer keys, and the key and name checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from layerscope.errors import Source, SpecError, did_you_mean
from layerscope.spec.catalog import yaml_hint
from layerscope.spec.expr import Resolver
from layerscope.spec.source import YMap

LAYER_KEYS = ("name", "op", "args", "from", "use", "layers", "repeat", "when", "tie", "param", "buffer")
BLOCK_KEYS = ("description", "params", "inputs", "layers")
NAME = re.compile(r"^[A-Za-z0-9_]+$")
LAYER_NAME_HINT = "dots are added by nesting"
# what a submodule name would shadow: every attribute of an nn.Module (methods, and instance state
# such as training and _modules) and of the container a spec builds
MODULE_ATTRS = frozenset(
    {
        *dir(nn.Module()),
        *vars(nn.Module()),
        "input_names",
        "nodes",
        "output",
        "type_name",
        "add_node",
        "add_call",
        "callee",
        "calls",
    }
)


@dataclass(frozen=True)
class Tie:
    """`tie: {weight: wte.weight}`: this layer's `param` is the parameter named `target`."""

    param: str
    target: str
    source: Source


@dataclass(frozen=True)
class TensorSpec:
    """A free tensor, `param: {...}` or `buffer: {...}` (spec/tensors.py): what the builder makes."""

    kind: str  # "param" or "buffer"
    shape: tuple[int, ...]
    init: str  # zeros, ones, uniform, normal
    seed: int  # of the tensor's own generator, for uniform and normal
    flag: bool  # a param's requires_grad, a buffer's persistent


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
    input_names: tuple[str, ...] = ("input",)  # what a container's children may name in `from:`
    output: str | None = None  # a container's result when it is not its last layer's (see `when:`)
    ties: tuple[Tie, ...] = ()
    alias: bool = False  # a `use:` that registers the module under this layer's name as well
    tensor: TensorSpec | None = None  # a `param:` or `buffer:` layer: its output is this tensor

    @property
    def is_container(self) -> bool:
        """Whether this layer has layers of its own: a Sequential, a use of a block, or a repeat."""
        return bool(self.layers)


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


def identifier(value: Any, what: str, where: Source, hint: str | None = None) -> str:
    """`value` when it is a name of letters, digits and _; else an error at `where`."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise SpecError(f"{what} {value!r} must be letters, digits or _", source=where, hint=yaml_hint(value) or hint)
    return value


def layer_name(value: Any) -> Any:
    """A name as torch writes it: YAML reads `name: 0` as the number 0, which names child `0`."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


def resolve_keys(item: YMap, resolver: Resolver, keys: Any) -> YMap:
    """A copy of `item` with `${...}` resolved in `keys` only: nested layer lists resolve in their own scope."""
    return item.derive((k, resolver.resolve(v, item.where(k)) if k in keys else v) for k, v in item.items())
