"""What a layer expected of its input, read off its own attributes, against what it got.

Used by diagnose.py when a forward pass fails: Linear's in_features against the last dim,
ConvNd's in_channels and kernel against the input, and so on for the layers people use most.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from layerscope._torch_compat import AVGPOOL_BASE, BATCHNORM_BASE, CONV_BASE, MAXPOOL_BASE
from layerscope.spec.ops import FunctionalOp
from layerscope.spec.shapes import format_shape


@dataclass
class Mismatch:
    """What a layer expected, in its own terms, and an explanation of the difference."""

    expected: str
    message: str
    arg: str | None = None  # the constructor argument that fixes it, e.g. in_features
    fits_input: int | None = None  # the value of `arg` that would accept the input as it is
    wanted: int | None = None  # the value the layer has for `arg`
    kind: str = "features"  # features | channels | spatial | ids | merge | dtype | other
    dtypes: tuple[str, str] | None = None  # a dtype clash: (the layer's weights', the input's)
    resizes: tuple[tuple[int, int], ...] = ()  # sizes the layer was given and the size each would need to fit


def _first_tensor(args: tuple[Any, ...]) -> Tensor | None:
    return next((a for a in args if isinstance(a, Tensor)), None)


def explain(module: nn.Module, args: tuple[Any, ...]) -> Mismatch | None:
    """What `module` expected of `args` and how they differ; None when there is nothing to add to
    torch's message: an unknown layer kind, or a layer in a state it cannot read (a Conv2d built
    with padding=None), since an explanation must never replace the failure itself."""
    try:
        return _explain(module, args)
    except Exception:  # noqa: BLE001 - the layer's own error is reported either way
        return None


def _explain(module: nn.Module, args: tuple[Any, ...]) -> Mismatch | None:
    x = _first_tensor(args)
    clash = _dtype_clash(module, x) if x is not None else None
    if clash is not None:
        return clash
    if isinstance(module, FunctionalOp):
        reader = _FUNCTIONAL.get(module.op)
        return reader(module.kwargs, args) if reader else None
    for cls, read in _MODULES:
        if isinstance(module, cls):
            return read(module, x, args) if x is not None else None
    return None


def _dtype_clash(module: nn.Module, x: Tensor) -> Mismatch | None:
    """A floating input of another dtype than the layer's floating weights: torch mixes neither."""
    weight = next((p for p in module.parameters() if p.is_floating_point()), None)
    if weight is None or not x.is_floating_point() or weight.dtype == x.dtype:
        return None
    weights, given = (str(t.dtype).removeprefix("torch.") for t in (weight, x))
    return Mismatch(
        f"a {weights} input (the dtype of its weights)",
        f"{type(module).__name__} has {weights} weights, got a {given} input",
        kind="dtype",
        dtypes=(weights, given),
    )


def _last_dim(arg: str, expected: int, x: Tensor, what: str) -> Mismatch | None:
    got = x.shape[-1] if x.dim() else None
    if got == expected:
        return None
    seen = "a scalar" if got is None else f"{got} (input {format_shape(list(x.shape))})"
    return Mismatch(
        f"{arg}={expected} (the last dim)",
        f"{what} expects the last dim to be {arg}={expected}, got {seen}",
        arg,
        got,
        expected,
    )


def _linear(m: nn.Linear, x: Tensor, args: Any) -> Mismatch | None:
    return _last_dim("in_features", m.in_features, x, "Linear")


def _rnn(m: nn.RNNBase, x: Tensor, args: Any) -> Mismatch | None:
    if x.dim() not in (2, 3):
        return Mismatch(
            "a 2-D or 3-D input (L, H_in) or (L, N, H_in)",
            f"{type(m).__name__} takes 2-D or 3-D input, got {x.dim()}-D {format_shape(list(x.shape))}",
            kind="other",
        )
    return _last_dim("input_size", m.input_size, x, type(m).__name__)


def _norm(m: nn.LayerNorm | nn.RMSNorm, x: Tensor, args: Any) -> Mismatch | None:
    expected = list(m.normalized_shape)
    got = list(x.shape[-len(expected) :])
    if got == expected:
        return None
    if len(expected) == 1:
        return _last_dim("normalized_shape", expected[0], x, type(m).__name__)
    return Mismatch(
        f"normalized_shape={format_shape(expected)} (the trailing dims)",
        f"{type(m).__name__} expects trailing dims {format_shape(expected)}, got {format_shape(list(x.shape))}",
        kind="other",
    )


def _channel_dim(arg: str, expected: int, got: int, x: Tensor, what: str) -> Mismatch:
    return Mismatch(
        f"{arg}={expected} (the channel dim)",
        f"{what} expects {arg}={expected} channels, got {got} (input {format_shape(list(x.shape))})",
        arg,
        got,
        expected,
        kind="channels",
    )


def _batchnorm(m: Any, x: Tensor, args: Any) -> Mismatch | None:
    if x.dim() < 2:
        return Mismatch(
            "a batched input (N, C, ...)",
            f"{type(m).__name__} needs at least 2 dims, got {format_shape(list(x.shape))}",
            kind="other",
        )
    if x.shape[1] != m.num_features:
        return _channel_dim("num_features", m.num_features, x.shape[1], x, type(m).__name__)
    return None


def _window(
    kernel: Sequence[int], padding: Sequence[int], dilation: Sequence[int], x: Tensor, what: str
) -> Mismatch | None:
    """A sliding window (conv or pool) larger than the padded input."""
    spatial = list(x.shape[-len(kernel) :])
    needed = [d * (k - 1) + 1 - 2 * p for k, p, d in zip(kernel, padding, dilation, strict=True)]
    if all(s >= n for s, n in zip(spatial, needed, strict=True)):
        return None
    return Mismatch(
        f"spatial size ≥ {format_shape(needed)} (kernel {format_shape(list(kernel))}, padding {format_shape(list(padding))})",
        f"{what}'s window {format_shape(list(kernel))} is larger than its input {format_shape(spatial)} after padding",
        kind="spatial",
    )


def _ntuple(value: Any, n: int) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [int(value)] * n


def _conv(m: Any, x: Tensor, args: Any) -> Mismatch | None:
    n = len(m.kernel_size)
    name = type(m).__name__
    if x.dim() not in (n + 1, n + 2):
        return Mismatch(
            f"a {n + 1}-D or {n + 2}-D input (C, *spatial) or (N, C, *spatial)",
            f"{name} takes {n + 1}-D or {n + 2}-D input, got {x.dim()}-D {format_shape(list(x.shape))}",
            kind="other",
        )
    channels = x.shape[-(n + 1)]
    if channels != m.in_channels:
        return _channel_dim("in_channels", m.in_channels, channels, x, name)
    padding = [0] * n if m.padding == "valid" else (list(m.kernel_size) if m.padding == "same" else list(m.padding))
    return _window(m.kernel_size, padding, m.dilation, x, name)  # type: ignore[arg-type]


def _pool_module(m: nn.Module, x: Tensor, args: Any) -> Mismatch | None:
    n = 1 if "1d" in type(m).__name__ else 3 if "3d" in type(m).__name__ else 2
    return _window(
        _ntuple(m.kernel_size, n), _ntuple(m.padding, n), _ntuple(getattr(m, "dilation", 1), n), x, type(m).__name__
    )


def _pool_functional(kwargs: dict[str, Any], args: tuple[Any, ...]) -> Mismatch | None:
    x = _first_tensor(args)
    if x is None:
        return None
    return _window(
        _ntuple(kwargs["kernel_size"], 2),
        _ntuple(kwargs.get("padding", 0), 2),
        _ntuple(kwargs.get("dilation", 1), 2),
        x,
        "pooling",
    )


def _embedding(m: nn.Embedding, x: Tensor, args: Any) -> Mismatch | None:
    if x.dtype.is_floating_point or x.dtype == torch.bool:
        return Mismatch(
            "integer ids (int64)",
            f"Embedding takes integer ids, got {str(x.dtype).removeprefix('torch.')}",
            kind="other",
        )
    if x.device.type == "meta" or x.numel() == 0:
        return None
    low, high = int(x.min()), int(x.max())
    if low >= 0 and high < m.num_embeddings:
        return None
    return Mismatch(
        f"ids in [0, {m.num_embeddings})",
        f"Embedding has num_embeddings={m.num_embeddings}, got ids from {low} to {high}",
        "num_embeddings",
        high + 1,
        m.num_embeddings,
        kind="ids",
    )


def _attention(m: nn.MultiheadAttention, x: Tensor, args: Any) -> Mismatch | None:
    return _last_dim("embed_dim", m.embed_dim, x, "MultiheadAttention")


def _transformer_layer(m: nn.Module, x: Tensor, args: Any) -> Mismatch | None:
    return _last_dim("d_model", m.self_attn.embed_dim, x, type(m).__name__)  # type: ignore[union-attr]


def _broadcast(op: str) -> Callable[[dict[str, Any], tuple[Any, ...]], Mismatch | None]:
    def explain(kwargs: dict[str, Any], args: tuple[Any, ...]) -> Mismatch | None:
        shapes = [list(a.shape) for a in args if isinstance(a, Tensor)]
        try:
            torch.broadcast_shapes(*[torch.Size(s) for s in shapes])
            return None
        except RuntimeError:
            pass
        width = max(len(s) for s in shapes)
        for offset in range(1, width + 1):
            sizes = {s[-offset] for s in shapes if len(s) >= offset} - {1}
            if len(sizes) > 1:
                dim = width - offset
                return Mismatch(
                    "shapes that broadcast together",
                    f"{op}: {' and '.join(map(format_shape, shapes))} differ at dim {dim} ({' vs '.join(str(s[-offset]) for s in shapes if len(s) >= offset)})",
                    kind="merge",
                )
        return None

    return explain


def _matmul(kwargs: dict[str, Any], args: tuple[Any, ...]) -> Mismatch | None:
    """torch.matmul's rule, step by step: each product's inner sizes must agree (a 1-d tensor is a
    row on the left, a column on the right)."""
    shapes = [list(a.shape) for a in args if isinstance(a, Tensor)]
    if len(shapes) < 2 or not all(shapes):
        return None
    left = shapes[0]
    for right in shapes[1:]:
        inner = right[0] if len(right) == 1 else right[-2]
        if left[-1] != inner:
            which = "size" if len(right) == 1 else "second-to-last dim"
            return Mismatch(
                "the first tensor's last dim equal to the second's second-to-last",
                f"matmul: {format_shape(left)} @ {format_shape(right)}: the last dim of the first ({left[-1]}) "
                f"must equal the second's {which} ({inner})",
                kind="merge",
            )
        left = [*left[:-1], *right[-1:]] if len(right) > 1 else left[:-1]
    return None


def _cat(kwargs: dict[str, Any], args: tuple[Any, ...]) -> Mismatch | None:
    shapes = [list(a.shape) for a in args if isinstance(a, Tensor)]
    dim = kwargs.get("dim", 0)
    if len({len(s) for s in shapes}) > 1:
        return Mismatch(
            "inputs with the same number of dims",
            f"cat: {' and '.join(map(format_shape, shapes))} have different numbers of dims",
            kind="merge",
        )
    dim %= len(shapes[0])
    for i in range(len(shapes[0])):
        if i != dim and len({s[i] for s in shapes}) > 1:
            return Mismatch(
                f"equal sizes in every dim but {dim}",
                f"cat along dim {dim}: {' and '.join(map(format_shape, shapes))} differ at dim {i}",
                kind="merge",
            )
    return None


def _reshape(kwargs: dict[str, Any], args: tuple[Any, ...]) -> Mismatch | None:
    x = _first_tensor(args)
    if x is None:
        return None
    target = list(kwargs["shape"])
    fixed = math.prod(t for t in target if t != -1)
    if (x.numel() == fixed) if -1 not in target else (fixed > 0 and x.numel() % fixed == 0):
        return None  # it holds the elements: whatever failed, it was not the count
    resizes = []
    if -1 not in target:  # one size of the target that, changed, would hold every element
        for i, size in enumerate(target):
            rest = math.prod(target[:i] + target[i + 1 :])
            if size > 0 and rest > 0 and x.numel() % rest == 0:
                resizes.append((int(size), x.numel() // rest))
    return Mismatch(
        f"{fixed} elements (shape {target})"
        if -1 not in target
        else f"a multiple of {fixed} elements (shape {target})",
        f"cannot reshape {format_shape(list(x.shape))} ({x.numel()} elements) to {target}",
        kind="features",
        resizes=tuple(resizes),
    )


def _flatten(kwargs: dict[str, Any], args: tuple[Any, ...]) -> Mismatch | None:
    x = _first_tensor(args)
    start = kwargs.get("start_dim", 1)
    if x is None or -max(x.dim(), 1) <= start < max(x.dim(), 1):
        return None
    return Mismatch(
        f"at least {start + 1} dims (start_dim={start})",
        f"flatten from start_dim={start} needs at least {start + 1} dims, got {x.dim()}-D {format_shape(list(x.shape))}",
        "start_dim",
        0,
        start,
        kind="other",
    )


# Checked in order, first match wins; the bases come from _torch_compat (private torch classes).
_MODULES: list[tuple[Any, Callable[..., Mismatch | None]]] = [
    (nn.Linear, _linear),
    (CONV_BASE, _conv),
    (BATCHNORM_BASE, _batchnorm),
    (nn.LayerNorm, _norm),
    (nn.RMSNorm, _norm),
    (nn.RNNBase, _rnn),
    (nn.Embedding, _embedding),
    (nn.MultiheadAttention, _attention),
    (nn.TransformerEncoderLayer, _transformer_layer),
    (nn.TransformerDecoderLayer, _transformer_layer),
    (MAXPOOL_BASE, _pool_module),
    (AVGPOOL_BASE, _pool_module),
]
_FUNCTIONAL: dict[str, Callable[[dict[str, Any], tuple[Any, ...]], Mismatch | None]] = {
    "add": _broadcast("add"),
    "mul": _broadcast("mul"),
    "cat": _cat,
    "matmul": _matmul,
    "max_pool2d": _pool_functional,
    "avg_pool2d": _pool_functional,
    "reshape": _reshape,
    "view": _reshape,
    "flatten": _flatten,
}
