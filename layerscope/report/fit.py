"""What sizes of input reach a failing layer in the form it accepts, worked out from the layers before it.

Used by diagnose.py instead of running the model again and again: the layers that ran before the
failing one form a chain (each took the previous one's output), and each has a known shape rule read
off its attributes (Linear's out_features, conv and pool window arithmetic, flatten, view sizes).
Every rule is checked against what the failed run observed; a layer without a rule, a rule that
disagrees, or layers that are not one chain give None, and diagnose probes instead.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from layerscope._torch_compat import AVGPOOL_BASE, BATCHNORM_BASE, CONV_BASE, MAXPOOL_BASE
from layerscope.builder.modules import SpecModule
from layerscope.run.records import LayerRecord, Shape
from layerscope.spec.ops import FUNCTIONAL_OPS, FunctionalOp

# A layer's shape rule: its output shape for an input shape, or None when it would reject that input.
Rule = Callable[[Shape], "Shape | None"]
LARGEST = 1024  # the sizes worked out are 1 … LARGEST


class Unknown(Exception):
    """The rule depends on something the module does not say (an in-dim that a spec may infer)."""


def chain(model: Any, records: Sequence[LayerRecord], where: LayerRecord, first: Shape) -> list[Rule] | None:
    """The rules of the leaf layers that ran before `where`, in order, when they are one chain from the
    model's first input (`first`) to `where`'s first input and every rule reproduces what ran; else None."""
    rules: list[Rule] = []
    shape = list(first)
    for record in records:
        if record is where or not (record.is_leaf and record.completed and record.depth > 0):
            continue
        try:
            if not _in_a_chain(model, record.name):
                return None
        except AttributeError:  # a name that is no submodule's
            return None
        if len(record.input_shapes) != 1 or len(record.output_shapes) != 1 or record.input_shapes[0] != shape:
            return None
        rule = rule_for(model.get_submodule(record.name))
        if rule is None or _apply(rule, shape) != record.output_shapes[0]:
            return None
        rules.append(rule)
        shape = list(record.output_shapes[0])
    try:
        chained = _in_a_chain(model, where.name)
    except AttributeError:
        return None
    return rules if chained and where.input_shapes and where.input_shapes[0] == shape else None


def _in_a_chain(model: Any, name: str) -> bool:
    """Whether each container above `name` runs its children one after another on the previous one's
    output: an nn.Sequential, or a spec's container without `from:` (a Python forward may do anything)."""
    parts = name.split(".")
    for depth in range(len(parts)):
        container = model.get_submodule(".".join(parts[:depth]))
        if isinstance(container, SpecModule):
            if container.output is not None or any(inputs for _, inputs in container.nodes):
                return False
        elif not isinstance(container, nn.Sequential):
            return False
    return True


def _apply(rule: Rule, shape: Shape) -> Shape | None:
    try:
        return rule(list(shape))
    except (Unknown, ValueError, IndexError, ZeroDivisionError):
        return None


def reaching(rules: Sequence[Rule], shape: Shape) -> Shape | None:
    """The shape `shape` becomes after every rule, None if a layer on the way rejects it;
    raises Unknown when a layer's rule cannot tell."""
    out: Shape | None = list(shape)
    for rule in rules:
        try:
            out = rule(out)  # type: ignore[arg-type]
        except (ValueError, IndexError, ZeroDivisionError):
            return None
        if out is None or any(d < 0 for d in out):
            return None
    return out


def _same(shape: Shape) -> Shape:
    return shape


def _batchnorm(m: Any) -> Rule:
    dims = {"BatchNorm1d": (2, 3), "BatchNorm2d": (4,), "BatchNorm3d": (5,)}.get(type(m).__name__)

    def rule(shape: Shape) -> Shape | None:
        if dims is not None and len(shape) not in dims:
            return None
        if dims is None or shape[1] != m.num_features:
            raise Unknown  # another BatchNorm class, or a num_features a spec may infer
        return shape

    return rule


def _linear(out_features: int, in_features: int) -> Rule:
    def rule(shape: Shape) -> Shape:
        if shape[-1] != in_features:
            raise Unknown  # a spec may infer in_features: whether another size fits is not known here
        return [*shape[:-1], out_features]

    return rule


def _norm_last(width: Sequence[int]) -> Rule:
    def rule(shape: Shape) -> Shape:
        if shape[-len(width) :] != list(width):
            raise Unknown
        return shape

    return rule


def _ntuple(value: Any, n: int) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)] * n


def _window_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil: bool) -> int:
    """torch's pooling_output_shape: windows of a conv or pool along one dim (below 1: rejected)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil else 0)
    out = span // stride + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def _windowed(n: int, channels: Callable[[int], int], window: Callable[[int, int], int]) -> Rule:
    """A conv or pool: the last `n` dims through `window(i, size)`, the channel dim through `channels`."""

    def rule(shape: Shape) -> Shape | None:
        if len(shape) not in (n + 1, n + 2):
            return None
        spatial = [window(i, s) for i, s in enumerate(shape[-n:])]
        if any(s < 1 for s in spatial):
            return None
        return [*shape[: -n - 1], channels(shape[-n - 1]), *spatial]

    return rule


def _conv(m: Any) -> Rule:
    n = len(m.kernel_size)

    def channels(c: int) -> int:
        if c != m.in_channels:
            raise Unknown
        return int(m.out_channels)

    if m.transposed:
        return _windowed(
            n,
            channels,
            lambda i, s: (s - 1) * m.stride[i] - 2 * m.padding[i] + m.dilation[i] * (m.kernel_size[i] - 1)
            + m.output_padding[i] + 1,
        )  # fmt: skip
    if m.padding == "same":
        return _windowed(n, channels, lambda i, s: s)
    padding = [0] * n if m.padding == "valid" else list(m.padding)
    return _windowed(
        n, channels, lambda i, s: _window_size(s, m.kernel_size[i], m.stride[i], padding[i], m.dilation[i], False)
    )


def _pool(n: int, kernel: Any, stride: Any, padding: Any, dilation: Any, ceil: bool) -> Rule:
    k, p, d = _ntuple(kernel, n), _ntuple(padding, n), _ntuple(dilation, n)
    s = _ntuple(stride, n) if stride not in (None, [], ()) else k
    return _windowed(n, lambda c: c, lambda i, size: _window_size(size, k[i], s[i], p[i], d[i], ceil))


def _pool_module(m: Any) -> Rule:
    n = 1 if "1d" in type(m).__name__ else 3 if "3d" in type(m).__name__ else 2
    return _pool(n, m.kernel_size, m.stride, m.padding, getattr(m, "dilation", 1), m.ceil_mode)


def _adaptive(output_size: Any, n: int) -> Rule:
    sizes = list(output_size) if isinstance(output_size, (list, tuple)) else [output_size] * n

    def rule(shape: Shape) -> Shape | None:
        if len(shape) not in (n + 1, n + 2):
            return None
        return [*shape[:-n], *(s if o is None else int(o) for s, o in zip(shape[-n:], sizes, strict=True))]

    return rule


def _flatten(start: int, end: int) -> Rule:
    def rule(shape: Shape) -> Shape:
        if not shape:
            return [1]
        a, b = start % len(shape), end % len(shape)
        if a > b:
            raise ValueError("start_dim after end_dim")
        return [*shape[:a], math.prod(shape[a : b + 1]), *shape[b + 1 :]]

    return rule


def _reshape(target: Sequence[int]) -> Rule:
    def rule(shape: Shape) -> Shape | None:
        total, known = math.prod(shape), math.prod(t for t in target if t != -1)
        if -1 not in target:
            return list(target) if known == total else None
        if known == 0 or total % known:
            return None
        return [total // known if t == -1 else int(t) for t in target]

    return rule


_SAME_SHAPE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh,
    nn.Softmax, nn.LogSoftmax, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
)  # fmt: skip
_SAME_SHAPE_OPS = frozenset({"relu", "gelu", "silu", "sigmoid", "tanh", "softmax", "log_softmax", "contiguous"})


def rule_for(module: nn.Module) -> Rule | None:
    """The shape rule of `module`, read off its attributes; None for a layer without a known rule."""
    if isinstance(module, FunctionalOp):
        return _functional_rule(module.op, module.kwargs)
    if isinstance(module, _SAME_SHAPE):
        return _same
    if isinstance(module, BATCHNORM_BASE):
        return _batchnorm(module)
    if isinstance(module, nn.Linear):
        return _linear(module.out_features, module.in_features)
    if isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
        return _norm_last(module.normalized_shape)
    if isinstance(module, CONV_BASE):
        return _conv(module)
    if isinstance(module, (MAXPOOL_BASE, AVGPOOL_BASE)):
        return _pool_module(module)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and not getattr(module, "return_indices", 0):
        return _adaptive(module.output_size, 2)
    if isinstance(module, nn.Flatten):
        return _flatten(module.start_dim, module.end_dim)
    return None


def _functional_rule(op: str, kwargs: dict[str, Any]) -> Rule | None:
    if op in _SAME_SHAPE_OPS:
        return _same
    if op not in ("flatten", "reshape", "view", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"):
        return None
    bound = inspect.signature(FUNCTIONAL_OPS[op]).bind(None, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    if op == "flatten":
        return _flatten(a["start_dim"], a["end_dim"])
    if op in ("reshape", "view"):
        return _reshape(list(a["shape"]))
    if op == "adaptive_avg_pool2d":
        return _adaptive(a["output_size"], 2)
    return _pool(2, a["kernel_size"], a["stride"], a["padding"], a.get("dilation", 1), a["ceil_mode"])
