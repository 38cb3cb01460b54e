"""Importer, sizes read in the forward: `b = x.shape[0]; x.view(b, -1)` is written as the number it
was for the given input (`reshape [2, -1]`), so the spec holds for that input only. The walk marks
each fx node whose value was read off a tensor's size (or computed from one), and each layer that
takes such a number; importer/document.py then says so on stderr and keeps every in-dim, so that
another input fails at a layer instead of building a different model. A container written from its
recorded calls (importer/fallback.py) marks its reshapes the same way: their sizes are the run's.
"""

from __future__ import annotations

import operator
from typing import Any

from torch import fx


def read_size(node: fx.Node, value: Any, sized: dict[fx.Node, str]) -> None:
    """Mark `node` in `sized` (with what it holds, in words) when its value is a tensor's size or
    is computed from one."""
    args = node.args
    if node.op == "call_method" and node.target == "size":
        sized[node] = (
            _dim(value, args[1]) if len(args) > 1 and isinstance(args[1], int) else f"the shape {_text(value)}"
        )
    elif node.op == "call_function" and node.target is getattr and len(args) > 1 and args[1] == "shape":
        sized[node] = f"the shape {_text(value)}"
    elif node.op == "call_function" and node.target is operator.getitem and args and args[0] in sized:
        shape = args[0]
        whole = shape.op == "call_method" or shape.target is getattr
        sized[node] = _dim(value, args[1]) if whole and isinstance(args[1], int) else f"{_text(value)}, from a size"
    elif any(n in sized for n in node.all_input_nodes):
        sized[node] = f"{_text(value)}, computed from a size"


def baked(node: fx.Node, sized: dict[fx.Node, str]) -> list[str]:
    """What the sizes a tensor-making `node` takes hold, in words (none: it takes no size)."""
    return list(dict.fromkeys(f"{sized[n]} read in the forward" for n in node.all_input_nodes if n in sized))


def _dim(value: Any, dim: int) -> str:
    return f"the batch of {value}" if dim == 0 else f"the size {value} of dim {dim}"


def _text(value: Any) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)
