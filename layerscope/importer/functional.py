"""Importer, one function call of a traced forward → a functional op of the spec language.

fx records `F.relu(x)`, `x.flatten(1)`, `x + y`, `torch.cat([a, b], 1)` as call_function and
call_method nodes. Each is read here as a spec op (spec/ops.py's FUNCTIONAL_OPS), its arguments
and the tensors it takes; a call with no spec equivalent is an error naming it.
"""

from __future__ import annotations

import inspect
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from layerscope.errors import UsageError
from layerscope.importer.arguments import plain
from layerscope.spec.catalog import lookup


@dataclass(frozen=True)
class T:
    """A tensor argument: the fx node that made it."""

    node: Any
    value: Any = None  # the tensor itself (a meta tensor: its shape)


@dataclass
class Call:
    """A function call read as a spec op: `op: None` passes its one tensor on unchanged (dropout in eval)."""

    op: str | None
    arguments: dict[str, Any]
    tensors: list[Any]  # fx nodes


_UNARY = ("relu", "silu", "sigmoid", "tanh", "contiguous")
_NAMES: dict[Any, str] = {}
for _name in (*_UNARY, "gelu", "softmax", "log_softmax", "flatten", "reshape", "permute", "transpose"):
    for _space in (torch, F, torch.Tensor):
        if hasattr(_space, _name):
            _NAMES[getattr(_space, _name)] = _name
for _name in ("unsqueeze", "squeeze", "mean", "sum", "amax", "add", "mul", "sub", "matmul", "cat", "unbind"):
    _NAMES[getattr(torch, _name)] = _name
for _name in (
    "max_pool2d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "dropout",
    "layer_norm",
    "scaled_dot_product_attention",
):
    _NAMES[getattr(F, _name)] = _name
_NAMES.update({
    operator.add: "add", operator.iadd: "add", operator.mul: "mul", operator.imul: "mul",
    operator.sub: "sub", operator.isub: "sub", operator.truediv: "div", operator.itruediv: "div",
    operator.matmul: "matmul", operator.getitem: "getitem", torch.div: "div",
})  # fmt: skip
# positional arguments after the tensor, by name, for the calls that take several
_POSITIONAL = {
    "softmax": ("dim",),
    "log_softmax": ("dim",),
    "flatten": ("start_dim", "end_dim"),
    "transpose": ("dim0", "dim1"),
    "unsqueeze": ("dim",),
    "squeeze": ("dim",),
    "mean": ("dim", "keepdim"),
    "sum": ("dim", "keepdim"),
    "amax": ("dim", "keepdim"),
    "max_pool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode"),
    "adaptive_avg_pool2d": ("output_size",),
    "gelu": ("approximate",),
}
_IGNORED = frozenset({"inplace", "_stacklevel"})


def call_name(kind: str, target: Any) -> str | None:
    """The canonical name of a call_function or call_method target, or None when the spec has no op for it."""
    if kind == "call_method":
        name = str(target).removesuffix("_")
        return {"view": "reshape", "div": "div", "__getitem__": "getitem"}.get(name, name)
    return _NAMES.get(target)


def read_call(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    """The spec op for a call `name(*args, **kwargs)` whose tensor arguments are `T`s."""
    handler = _HANDLERS.get(name)
    if (handler is None and name in _POSITIONAL) or name in _UNARY:
        handler = _positional
    if handler is None:
        raise UsageError(
            f"{what} has no equivalent in the spec language", hint="see docs/spec.md for the functional ops"
        )
    if not args or (not isinstance(args[0], T) and name not in ("add", "mul", "cat")):
        raise UsageError(f"{what}: the spec's {name} takes a tensor first")
    return handler(name, args, kwargs, what)


def _positional(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    given = dict(zip(_POSITIONAL.get(name, ()), args[1:], strict=False))
    if len(args) - 1 > len(_POSITIONAL.get(name, ())):
        raise UsageError(f"{what}: more arguments than the spec's {name} takes")
    given.update({k: v for k, v in kwargs.items() if k not in _IGNORED})
    if name == "flatten":
        given.setdefault("start_dim", 0)  # torch's default; the spec's is 1
    _no_tensors(given, what)
    return Call(name, _spec_arguments(name, given, what), [args[0].node])


def _spec_arguments(op: str, given: dict[str, Any], what: str) -> dict[str, Any]:
    """The arguments the spec's op takes, those at its defaults left out; one it lacks must be off
    (`return_indices=False`), else the call has no spec op."""
    info = lookup(op)
    parameters = info.signature.parameters if info is not None else {}
    kept = {}
    for key, value in given.items():
        if key not in parameters:
            if value not in (None, False):
                raise UsageError(f"{what}: the spec's {op} has no argument {key}")
            continue
        default = parameters[key].default
        if default is inspect.Parameter.empty or type(default) is not type(value) or default != value:
            kept[key] = plain(value, key, what)
    return kept


def _shape(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    rest = args[1:] if len(args) > 2 or not isinstance(args[1], (list, tuple)) else list(args[1])
    rest = rest or list(kwargs.get("shape", kwargs.get("dims", ())))
    _no_tensors({"shape": rest}, what)
    return Call(name, {"shape" if name == "reshape" else "dims": [int(v) for v in rest]}, [args[0].node])


def _arithmetic(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    if set(kwargs) - {"out"} or len(args) != 2:
        raise UsageError(f"{what}: only `a {name} b` of two values has a spec op")
    tensors = [a.node for a in args if isinstance(a, T)]
    numbers = [a for a in args if not isinstance(a, T)]
    if numbers and (isinstance(numbers[0], bool) or not isinstance(numbers[0], (int, float))):
        raise UsageError(f"{what}: {numbers[0]!r} is not a number")
    if name in ("sub", "div") and (len(tensors) != 1 or not isinstance(args[0], T)):
        raise UsageError(f"{what}: the spec has add and mul; {name} only by a number after the tensor")
    if not numbers:
        return Call(name, {}, tensors)
    constant = numbers[0]
    op = {"add": "add", "mul": "mul", "sub": "add", "div": "mul"}[name]
    constant = -constant if name == "sub" else 1 / constant if name == "div" else constant
    return Call(op, {"constant": constant}, tensors)


def _matmul(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    if len(args) != 2 or not all(isinstance(a, T) for a in args) or kwargs:
        raise UsageError(f"{what}: matmul of two tensors only")
    return Call("matmul", {}, [a.node for a in args])


def _cat(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    parts = args[0] if args else kwargs.get("tensors", ())
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if not isinstance(parts, (list, tuple)) or not all(isinstance(p, T) for p in parts):
        raise UsageError(f"{what}: cat of a list of tensors only")
    return Call("cat", {"dim": dim}, [p.node for p in parts])


def _expand(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    sizes = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
    _no_tensors({"sizes": sizes}, what)
    return Call("expand", {"sizes": [int(v) for v in sizes]}, [args[0].node])


def _layer_norm(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    given = dict(zip(("input", "normalized_shape", "weight", "bias", "eps"), args, strict=False)) | kwargs
    shape = given.get("normalized_shape")
    width = given["input"].value.shape[-1]
    if not isinstance(shape, (list, tuple)) or len(shape) != 1 or shape[0] != width:
        raise UsageError(f"{what}: the spec's functional_layer_norm normalises the last dim only, not {shape!r}")
    affine = [given.get("weight"), given.get("bias")]
    if affine[0] is None and affine[1] is not None:
        raise UsageError(f"{what}: a bias without a weight has no spec op")
    tensors = [given["input"].node] + [t.node for t in affine if isinstance(t, T)]
    eps = given.get("eps", 1e-5)
    return Call("functional_layer_norm", {} if eps == 1e-5 else {"eps": eps}, tensors)


def _attention(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
    given = dict(zip(names, args, strict=False)) | kwargs
    if given.get("attn_mask") is not None or given.get("dropout_p", 0.0) or given.get("enable_gqa"):
        raise UsageError(f"{what}: a mask, dropout or grouped heads in attention have no spec op")
    arguments = {"causal": True} if given.get("is_causal") else {}
    if given.get("scale") is not None:
        arguments["scale"] = given["scale"]
    return Call("scaled_dot_product_attention", arguments, [given[k].node for k in ("query", "key", "value")])


def _dropout(name: str, args: list[Any], kwargs: dict[str, Any], what: str) -> Call:
    training = args[2] if len(args) > 2 else kwargs.get("training", True)
    if training:
        raise UsageError(f"{what}: dropout while training has no spec op", hint="import the model in eval mode")
    return Call(None, {}, [args[0].node])


def getitem(value: Any, index: Any, node: Any, unbound: dict[Any, tuple[Any, int]], what: str) -> Call:
    """`x[index]`: an element of a module's tuple output (`select`), of an unbind (`getitem` along its
    dim), or of a tensor by an int, or by `:`s then an int (`getitem` with `dim`)."""
    if node in unbound:
        source, dim = unbound[node]
        return Call("getitem", {"index": index, "dim": dim}, [source])
    if isinstance(value, (tuple, list)):
        if not isinstance(index, int):
            raise UsageError(f"{what}: only an element of a tuple by its index has a spec op")
        return Call("select", {"index": index}, [node])
    if isinstance(index, int) and not isinstance(index, bool):
        return Call("getitem", {"index": index}, [node])
    if isinstance(index, tuple) and index and isinstance(index[-1], int):
        if all(s == slice(None) for s in index[:-1]):
            return Call("getitem", {"index": index[-1], "dim": len(index) - 1}, [node])
    raise UsageError(f"{what}: indexing by {index!r} has no spec op", hint="getitem takes an int, with `:`s before it")


def _no_tensors(arguments: dict[str, Any], what: str) -> None:
    for key, value in arguments.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, T) for v in values):
            raise UsageError(f"{what}: argument {key} is a tensor, which the spec's op takes only as a number")


_HANDLERS: dict[str, Callable[[str, list[Any], dict[str, Any], str], Call]] = {
    "reshape": _shape,
    "permute": _shape,
    "add": _arithmetic,
    "mul": _arithmetic,
    "sub": _arithmetic,
    "div": _arithmetic,
    "matmul": _matmul,
    "cat": _cat,
    "dropout": _dropout,
    "expand": _expand,
    "layer_norm": _layer_norm,
    "scaled_dot_product_attention": _attention,
}
