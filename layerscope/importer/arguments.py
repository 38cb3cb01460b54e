"""Importer, one torch.nn layer → its op and constructor arguments, read off the module's attributes.

The op catalogue's signature (spec/catalog.py) says which arguments a class takes; each is read from
the attribute of the same name (`Conv2d.stride`, `BatchNorm2d.eps`), `bias` from whether the module
holds one. An argument with no attribute keeps its default; a required one with no attribute makes
the layer inexpressible. Whether the reading was right is checked afterwards: the spec is built and
its parameter shapes compared with the module's (importer/check.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from layerscope.errors import UsageError
from layerscope.spec.catalog import INFERENCES, lookup

# tuples these arguments hold are the same size repeated per spatial dim: (3, 3) is written 3
_PER_DIM = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding", "output_size"})
# arguments whose attribute is the tensor itself, present or not
_PRESENCE = {"bias": "bias", "affine": "weight", "elementwise_affine": "weight"}


def layer_arguments(module: nn.Module, where: str, input_shape: list[int] | None) -> tuple[str, dict[str, Any]]:
    """The op name of a torch.nn layer and the arguments that differ from its defaults; the in-dim
    is left out when the builder would read the same value off `input_shape`."""
    op = type(module).__name__
    info = lookup(op)
    if info is None or getattr(nn, op, None) is not type(module):
        raise UsageError(f"{where}: {type(module).__qualname__} is not a torch.nn layer the spec language knows")
    arguments: dict[str, Any] = {}
    for name, param in info.signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        value = _attribute(module, name)
        if value is _MISSING:
            if param.default is param.empty:
                raise UsageError(
                    f"{where}: cannot read {op}'s argument {name!r} off the module",
                    hint="the spec language needs every required argument",
                )
            continue
        value = plain(value, name, where)
        if param.default is not param.empty and _same(value, plain(param.default, name, where)):
            continue
        arguments[name] = value
    inference = INFERENCES.get(op)
    if inference is not None and input_shape is not None and inference.arg in arguments:
        try:
            inferred = inference.read(input_shape)
        except IndexError:
            inferred = None
        if _same(arguments[inference.arg], inferred):
            del arguments[inference.arg]
    return op, arguments


class _Missing:
    pass


_MISSING = _Missing()


def _attribute(module: nn.Module, name: str) -> Any:
    if name in _PRESENCE and (name not in vars(module) or name == "bias"):
        held = getattr(module, _PRESENCE[name], _MISSING)
        if held is not _MISSING:
            return held is not None
    if name in vars(module) or (hasattr(type(module), name) and not callable(getattr(type(module), name))):
        value = getattr(module, name, _MISSING)
        return _MISSING if isinstance(value, (torch.Tensor, nn.Module)) else value
    return _MISSING


def plain(value: Any, name: str, where: str) -> Any:
    """`value` as YAML-ready plain data: tuples become lists, a per-dim tuple of one size that size."""
    if isinstance(value, (tuple, list)):
        items = [plain(v, name, where) for v in value]
        if name in _PER_DIM and items and all(v == items[0] for v in items):
            return items[0]
        return items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise UsageError(
        f"{where}: argument {name}={value!r} has no YAML form",
        hint="the spec language takes numbers, text, true/false and lists of them",
    )


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same kind (True is not 1, 1.0 is 1); [n] is n."""
    if isinstance(a, list) and len(a) == 1 and not isinstance(b, list):
        a = a[0]
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    return a == b if numbers or type(a) is type(b) else False
