"""Importer, the walk: a module's forward read by torch.fx, one container at a time, as spec layers.

Each container (the model, a class of the user's, an nn.Sequential) is traced on its own with every
child a leaf, so a child called in its forward becomes one layer named after the child's attribute,
and the spec nests as the model does (`layer1.0.conv1`). The graph is then run node by node on
meta tensors of the input's shapes (a copy of the model on meta: run/shadow.py), so every layer's
input shape is known and sizes read in the forward (`x.shape[0]`) are numbers. A torch.nn layer
becomes `op: Class` with its arguments (importer/arguments.py), a child of the user's a `Use` that
importer/fold.py turns into a block, an nn.Sequential a `layers:` list, a function call a functional
op (importer/functional.py), a parameter or buffer of the container's own a `param:` or `buffer:`.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.nn.parameter import is_lazy

from layerscope.errors import UsageError
from layerscope.importer.arguments import layer_arguments
from layerscope.importer.functional import T, call_name, getitem, read_call
from layerscope.importer.sizes import baked, read_size
from layerscope.importer.values import buffer_init

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
_MULTI = ("add", "mul", "matmul", "cat", "functional_layer_norm", "scaled_dot_product_attention")


@dataclass
class Use:
    """One call of a container class of the user's: its layers, before blocks are made of them."""

    cls: str
    path: str
    layers: list[dict[str, Any]]
    inputs: list[str]
    site: dict[str, Any] = field(default_factory=dict)  # the layer that calls it (set by fold.name_layers)


@dataclass
class Ref:
    """A `from:` to a layer of the same list (resolved to its name once every name is known)."""

    layer: dict[str, Any]


@dataclass
class Walk:
    """Every `Use` met, innermost first."""

    uses: list[Use] = field(default_factory=list)
    # one traced run of the whole model (run.trace.Trace), for a container fx cannot trace (importer/fallback.py)
    recorded: Callable[[], Any] | None = None
    fell_back: list[tuple[str, str]] = field(default_factory=list)  # (the container, why fx failed)
    free_buffers: dict[str, str] = field(default_factory=dict)  # importer/values.py: free_buffers
    keep_in_dims: bool = False  # write every in-dim, even one the builder would read off the input
    baked: list[tuple[str, dict[str, Any], list[str]]] = field(default_factory=list)  # importer/sizes.py
    leaves: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # each torch.nn layer's, its module path


class _ChildrenAreLeaves(fx.Tracer):
    def __init__(self, root: nn.Module):
        super().__init__()
        self.root_module = root

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return m is not self.root_module


def is_layer(module: nn.Module) -> bool:
    """A torch.nn class other than a container: a spec op of its own name."""
    kind = type(module)
    return getattr(nn, kind.__name__, None) is kind and kind is not nn.Module and not isinstance(module, _CONTAINERS)


def walk_module(module: nn.Module, path: str, args: list[Any], walk: Walk) -> tuple[list[dict[str, Any]], Any]:
    """The layers of container `module` called on `args` (meta tensors), and its output."""
    if type(module) is nn.Sequential:
        return _sequential(module, path, args, walk)
    if type(module).forward is nn.Module.forward:
        raise UsageError(
            f"{path or 'the model'}: a {type(module).__name__} without a forward of its own cannot be called"
        )
    try:
        graph = _ChildrenAreLeaves(module).trace(module, concrete_args=_defaults_after(module, len(args)))
    except Exception as e:  # noqa: BLE001 - whatever fx cannot trace: data-dependent control flow, …
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if walk.recorded is not None:
            from layerscope.importer.fallback import recorded_layers

            return recorded_layers(module, path, args, walk, message)
        raise UsageError(
            f"{path or 'the model'} ({type(module).__name__}): torch.fx cannot trace its forward: {message}",
            hint="a spec is read from the forward as torch.fx traces it: no branches on values, no len() of a tensor",
        ) from None
    return _Container(module, path, walk).run(graph, args)


def _at_defaults(child: nn.Module, kwargs: dict[str, Any]) -> bool:
    """Whether every keyword argument of a call is the forward's default (`attn_mask=None`)."""
    if not kwargs:
        return True
    try:
        parameters = inspect.signature(child.forward).parameters
    except (TypeError, ValueError):
        return False
    return all(
        k in parameters and parameters[k].default is v for k, v in kwargs.items() if v is None or isinstance(v, bool)
    ) and all(v is None or isinstance(v, bool) for v in kwargs.values())


def _defaults_after(module: nn.Module, given: int) -> dict[str, Any] | None:
    """The forward's parameters past the `given` inputs, at their defaults (ViT's `attn_mask=None`):
    fx makes each an input otherwise, and the branches on them stay open."""
    try:
        parameters = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    rest = {p.name: p.default for p in parameters[given:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if any(p.default is p.empty for p in parameters[given:] if p.name in rest):
        return None  # a required input not given: the placeholder count reports it
    return rest or None


def _sequential(module: nn.Sequential, path: str, args: list[Any], walk: Walk) -> tuple[list[dict[str, Any]], Any]:
    if len(args) != 1:
        raise UsageError(f"{path}: an nn.Sequential takes one input")
    layers, value = [], args[0]
    for name, child in module.named_children():
        layer, value = child_layer(child, f"{path}.{name}" if path else name, [value], walk)
        layers.append(layer)
    return layers, value


def child_layer(child: nn.Module, path: str, args: list[Any], walk: Walk) -> tuple[dict[str, Any], Any]:
    """One child called on `args` as a layer (without name or from:), and its output."""
    if is_layer(child):
        shape = list(args[0].shape) if args and isinstance(args[0], Tensor) and not walk.keep_in_dims else None
        op, arguments = layer_arguments(child, path, shape)
        layer = {"op": op, **arguments}
        walk.leaves.append((layer, path))
        return layer, ran(child, args, path)
    if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
        raise UsageError(f"{path}: a {type(child).__name__} is called, and has no forward")
    layers, out = walk_module(child, path, args, walk)
    if type(child) is nn.Sequential:
        return {"layers": layers}, out
    use = Use(type(child).__name__, path, layers, [f"input{i}" if len(args) > 1 else "input" for i in range(len(args))])
    walk.uses.append(use)
    return {"op": use}, out


class _Container:
    """The run of one traced container: each node's value, and the layer that made each tensor."""

    def __init__(self, module: nn.Module, path: str, walk: Walk):
        self.module, self.path, self.walk = module, path, walk
        self.values: dict[fx.Node, Any] = {}
        self.made_by: dict[fx.Node, Any] = {}  # node → an input's name, or a Ref to a layer
        self.unbound: dict[fx.Node, tuple[fx.Node, int]] = {}  # the tuple of an unbind → (its tensor, dim)
        self.layers: list[dict[str, Any]] = []
        self.last: fx.Node | None = None  # the node the previous layer's output is
        self.called: set[str] = set()
        self.sized: dict[fx.Node, str] = {}  # a number read off a tensor's size → what it holds (importer/sizes.py)

    def where(self, node: fx.Node) -> str:
        """The container and the call: `layer1.0: torch.sigmoid(…)`."""
        target = node.target
        if node.op == "call_function":
            text = function_name(target)
        else:
            text = f".{target}" if node.op == "call_method" else str(target)
        return f"{self.path or 'the model'}: {text}(…)"

    def run(self, graph: fx.Graph, args: list[Any]) -> tuple[list[dict[str, Any]], Any]:
        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        fixed = placeholders[len(args) :]  # the forward's parameters left at their defaults
        if len(placeholders) < len(args) or any(not n.args for n in fixed):
            raise UsageError(f"{self.path or 'the model'}: takes {len(placeholders)} inputs, given {len(args)}")
        for node in fixed:
            self.values[node] = node.args[0]
        for i, node in enumerate(placeholders[: len(args)]):
            self.values[node] = args[i]
            self.made_by[node] = "input" if len(args) == 1 else f"input{i}"
        self.last = placeholders[0] if placeholders else None
        for node in graph.nodes:
            if node.op == "get_attr":
                self._attribute(node)
            elif node.op == "call_module":
                self._call_module(node)
            elif node.op in ("call_function", "call_method"):
                self._call(node)
            elif node.op == "output":
                return self.layers, self._output(node)
        raise UsageError(f"{self.path}: its graph has no output")

    def _value(self, arg: Any) -> Any:
        return fx.node.map_arg(arg, lambda n: self.values[n])

    def _add(self, node: fx.Node, layer: dict[str, Any], tensors: list[fx.Node], value: Any, many: bool) -> None:
        """Add `layer`, reading `tensors`: from: is written unless it is the previous layer's output."""
        for t in tensors:
            if t not in self.made_by:
                raise UsageError(f"{self.where(node)}: takes a value that no layer or input makes")
        if many or tensors != [self.last]:
            sources = [self.made_by[t] for t in tensors]
            layer["from"] = sources if many else sources[0]
        self.layers.append(layer)
        self.values[node] = value
        self.made_by[node] = Ref(layer)
        self.last = node

    def _attribute(self, node: fx.Node) -> None:
        target = str(node.target)
        params = dict(self.module.named_parameters(recurse=False))
        buffers = dict(self.module.named_buffers(recurse=False))
        kind: dict[str, Any]
        if target in params:
            value: Tensor = params[target]
            kind = {"param": {"shape": list(value.shape), **({} if value.requires_grad else {"requires_grad": False})}}
        elif target in buffers:
            value = buffers[target]
            kept = target in self.module.state_dict(keep_vars=True)
            made = {} if kept else {**buffer_init(self.walk.free_buffers, self._qualified(target)), "persistent": False}
            kind = {"buffer": {"shape": list(value.shape), **made}}
        else:
            raise UsageError(f"{self.where(node)}: reads {target}, which is not a parameter or buffer of its own")
        layer = {"name": target, **kind}
        self.layers.append(layer)
        self.values[node] = value
        self.made_by[node] = Ref(layer)
        self.last = node

    def _qualified(self, target: str) -> str:
        return f"{self.path}.{target}" if self.path else target

    def _call_module(self, node: fx.Node) -> None:
        target = str(node.target)
        at_defaults = "." not in target and _at_defaults(
            self.module.get_submodule(target), self._value(dict(node.kwargs))
        )
        if "." in target or not at_defaults:
            raise UsageError(
                f"{self.where(node)}: calls {target}"
                + (" with keyword arguments" if node.kwargs else ", a module inside a child"),
                hint="the spec language calls a container's own children, with positional inputs",
            )
        args = self._value(list(node.args))
        tensors = [a for a in node.args if isinstance(a, fx.Node)]
        if len(tensors) != len(node.args):
            raise UsageError(f"{self.where(node)}: passes a value that is not a tensor to {target}")
        child = self.module.get_submodule(target)
        if target in self.called:
            self._add(node, {"use": target}, tensors, ran(child, args, self.where(node)), len(tensors) > 1)
            return
        self.called.add(target)
        layer, out = child_layer(child, f"{self.path}.{target}" if self.path else target, args, self.walk)
        named = {"name": target, **layer}
        if self.walk.leaves and self.walk.leaves[-1][0] is layer:  # the torch.nn layer, now named
            self.walk.leaves[-1] = (named, self.walk.leaves[-1][1])
        self._add(node, named, tensors, out, len(tensors) > 1)

    def _call(self, node: fx.Node) -> None:
        args, kwargs = self._value(list(node.args)), self._value(dict(node.kwargs))
        fn = node.target if node.op == "call_function" else getattr(args[0], str(node.target))
        value = ran(fn, args if node.op == "call_function" else args[1:], self.where(node), kwargs)
        self.values[node] = value
        if not _holds_tensor(value):
            read_size(node, value, self.sized)
            return  # sizes and other numbers: the nodes that read them take the number
        name = call_name(node.op, node.target)
        marked = fx.node.map_arg(
            (list(node.args), dict(node.kwargs)),
            lambda n: T(n, self.values[n]) if isinstance(self.values[n], Tensor) else self.values[n],
        )
        if name == "unbind":
            dim = (marked[0][1:] or [marked[1].get("dim", 0)])[0]
            self.unbound[node] = (node.args[0], dim)
            return
        if name == "getitem":
            source = node.args[0]
            call = getitem(self.values[source], marked[0][1], source, self.unbound, self.where(node))
        elif name is None:
            raise UsageError(
                f"{self.where(node)} has no equivalent in the spec language",
                hint="see docs/spec.md for the functional ops",
            )
        else:
            call = read_call(name, *marked, self.where(node))
        if call.op is None:  # passes its input on: the node is that tensor
            self.made_by[node] = self.made_by[call.tensors[0]]
            return
        layer = {"op": call.op, **call.arguments}
        if baked(node, self.sized):
            self.walk.baked.append((self.path, layer, baked(node, self.sized)))
        self._add(node, layer, call.tensors, value, call.op in _MULTI and len(call.tensors) > 1)

    def _output(self, node: fx.Node) -> Any:
        result = node.args[0]
        if not isinstance(result, fx.Node) or not isinstance(self.values.get(result), Tensor):
            kind = type(self._value(result))
            what = (
                "a dict" if issubclass(kind, dict) else "a tuple" if issubclass(kind, (tuple, list)) else kind.__name__
            )
            raise UsageError(
                f"{self.path or 'the model'}: returns {what}, not one tensor",
                hint="the spec language returns one tensor",
            )
        if result is not self.last:
            raise UsageError(f"{self.path or 'the model'}: returns {result.name}, which is not its last layer's output")
        return self.values[result]


def function_name(target: Any) -> str:
    """How Python code names a function: torch.sin, torch.nn.functional.relu, operator.add."""
    name = getattr(target, "__name__", str(target))
    for space, prefix in ((torch, "torch"), (F, "torch.nn.functional"), (operator, "operator")):
        if getattr(space, name, None) is target:
            return f"{prefix}.{name}"
    return f"{getattr(target, '__module__', None) or ''}.{getattr(target, '__qualname__', name)}".lstrip(".")


def ran(fn: Any, args: list[Any], where: str, kwargs: dict[str, Any] | None = None) -> Any:
    """`fn(*args, **kwargs)` on meta tensors; the model refusing its input is the user's error."""
    if isinstance(fn, nn.Module) and any(is_lazy(p) for p in fn.parameters()):
        raise UsageError(
            f"{where}: {type(fn).__name__} is lazy and not yet made", hint="run the model once before importing it"
        )
    try:
        return fn(*args, **(kwargs or {}))
    except (RuntimeError, ValueError, IndexError, TypeError, AssertionError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(
            f"{where}: the model does not accept its input here: {message}", hint="check --input"
        ) from None


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    return isinstance(value, (tuple, list)) and any(isinstance(v, Tensor) for v in value)
