"""Diagnose stage: why a layer rejected its input, and what would fit.

Called by the trace stage when the forward pass fails. What the layer expected is read off
the layer's own attributes (in_features, in_channels, kernel_size, ...), compared with what it
got; hints are computed, not canned: other inputs are tried with stand-ins for the weights (on
the CPU for small models, on meta above that; see devices.py), so the user's model is untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from layerscope import devices
from layerscope.ops import FunctionalOp
from layerscope.report import ChainStep, Failure, LayerRecord, format_shape, format_shapes

MAX_PROBES = 64  # candidate inputs tried per failure: what bounds the search, so hints are repeatable
SEARCH_SECONDS = 10.0  # a safety net for models so large that even 64 probes take long
MAX_FITS = 3

# probe(first input's shape, failing layer's name) → (the whole model ran, that layer finished)
Probe = Callable[[list[int], str], tuple[bool, bool]]


@dataclass
class Mismatch:
    """What a layer expected, in its own terms, and an explanation of the difference."""

    expected: str
    message: str
    arg: str | None = None  # the constructor argument that fixes it, e.g. in_features
    fits_input: int | None = None  # the value of `arg` that would accept the input as it is
    wanted: int | None = None  # the value the layer has for `arg`
    kind: str = "features"  # features | channels | spatial | ids | merge | other


def failure(
    model: nn.Module,
    inputs: Sequence[Any],
    records: list[LayerRecord],
    where: LayerRecord,
    module: nn.Module | None,
    args: tuple[Any, ...],
    error: Exception,
    probe: Probe | None = None,
    search: bool = True,
) -> Failure:
    """The full account of a failed forward pass at `where` (the innermost call still open).

    `probe` tries other input shapes (default: `model` itself on meta stand-ins); with
    `search` off, only the hints read off the layer itself are given.
    """
    text = str(error).strip()
    torch_message = text.splitlines()[0] if text else type(error).__name__
    mismatch = _explain_safely(module, args) if module is not None else None
    hints = _hints(probe or module_probe(model, inputs), inputs, where, mismatch, search) if mismatch else []
    return Failure(
        layer=where.name,
        type=where.type,
        source=where.source,
        got=where.input_shapes,
        expected=mismatch.expected if mismatch else None,
        message=mismatch.message if mismatch else torch_message,
        hints=hints,
        error=torch_message,
        chain=chain_to(records, where.name),
    )


def chain_to(records: list[LayerRecord], failing: str) -> list[ChainStep]:
    """The shapes that led to `failing`: the completed siblings of it and of its ancestors."""
    parts = failing.split(".") if failing else []
    ancestors = {".".join(parts[:i]) for i in range(len(parts))}
    steps = []
    for record in records:
        parent = record.name.rpartition(".")[0]
        if record.completed and record.depth > 0 and parent in ancestors and record.name not in ancestors:
            steps.append(ChainStep(record.name, record.output_shapes))
    return steps


# -- what the layer expected -------------------------------------------------------------


def _first_tensor(args: tuple[Any, ...]) -> Tensor | None:
    return next((a for a in args if isinstance(a, Tensor)), None)


def _explain_safely(module: nn.Module, args: tuple[Any, ...]) -> Mismatch | None:
    """`_explain`, or None (torch's message stands) when the layer is in a state it cannot read,
    e.g. a Conv2d constructed with padding=None: an explanation must never replace the failure."""
    try:
        return _explain(module, args)
    except Exception:  # noqa: BLE001 - the layer's own error is reported either way
        return None


def _explain(module: nn.Module, args: tuple[Any, ...]) -> Mismatch | None:
    x = _first_tensor(args)
    if isinstance(module, FunctionalOp):
        explain = _FUNCTIONAL.get(module.op)
        return explain(module.kwargs, args) if explain else None
    for cls, explain in _MODULES:
        if isinstance(module, cls):
            return explain(module, x, args) if x is not None else None
    return None


def _last_dim(arg: str, expected: int, x: Tensor, what: str) -> Mismatch | None:
    got = x.shape[-1] if x.dim() else None
    if got == expected:
        return None
    return Mismatch(
        f"{arg}={expected} (the last dim)",
        f"{what} expects the last dim to be {arg}={expected}, got {got} (input {format_shape(list(x.shape))})",
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


def _batchnorm(m: nn.modules.batchnorm._BatchNorm, x: Tensor, args: Any) -> Mismatch | None:
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


def _conv(m: nn.modules.conv._ConvNd, x: Tensor, args: Any) -> Mismatch | None:
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
    return Mismatch(
        f"a shape holding {x.numel()} elements",
        f"cannot reshape {format_shape(list(x.shape))} ({x.numel()} elements) to {target}",
        kind="features",
    )


_MODULES: list[tuple[type, Callable[..., Mismatch | None]]] = [
    (nn.Linear, _linear),
    (nn.modules.conv._ConvNd, _conv),
    (nn.modules.batchnorm._BatchNorm, _batchnorm),
    (nn.LayerNorm, _norm),
    (nn.RMSNorm, _norm),
    (nn.RNNBase, _rnn),
    (nn.Embedding, _embedding),
    (nn.MultiheadAttention, _attention),
    (nn.TransformerEncoderLayer, _transformer_layer),
    (nn.TransformerDecoderLayer, _transformer_layer),
    (nn.modules.pooling._MaxPoolNd, _pool_module),
    (nn.modules.pooling._AvgPoolNd, _pool_module),
]
_FUNCTIONAL: dict[str, Callable[[dict[str, Any], tuple[Any, ...]], Mismatch | None]] = {
    "add": _broadcast("add"),
    "mul": _broadcast("mul"),
    "cat": _cat,
    "max_pool2d": _pool_functional,
    "avg_pool2d": _pool_functional,
    "reshape": _reshape,
    "view": _reshape,
}


# -- what would fit ------------------------------------------------------------------------


def _hints(probe: Probe, inputs: Sequence[Any], where: LayerRecord, mismatch: Mismatch, search: bool) -> list[str]:
    hints = []
    if mismatch.arg and mismatch.fits_input is not None:
        infer = (
            " (or leave it out: layerscope infers it)"
            if where.source and mismatch.kind in ("features", "channels")
            else ""
        )
        hints.append(f"set {mismatch.arg}: {mismatch.fits_input} to accept this input{infer}")
    if mismatch.kind == "ids":
        hints.append(f"or keep the ids below {mismatch.wanted}: input range [0, {mismatch.wanted}] in the spec")
    if (
        search
        and mismatch.kind in ("features", "channels", "spatial", "merge")
        and inputs
        and isinstance(inputs[0], Tensor)
    ):
        hints.extend(_search(probe, inputs[0], where.name, mismatch))
    return hints


def _search(probe: Probe, x: Tensor, layer: str, mismatch: Mismatch) -> list[str]:
    """Try other shapes for the first input; report those that fit."""
    shape = list(x.shape)
    if mismatch.kind == "channels":
        if x.dim() < 3 or mismatch.wanted is None:
            return []
        candidate = [shape[0], mismatch.wanted, *shape[2:]]
        return (
            [f"an input with {mismatch.wanted} channels fits: {format_shape(candidate)}"]
            if probe(candidate, layer)[0]
            else []
        )
    vary = list(range(2, x.dim())) if x.dim() >= 3 else [x.dim() - 1]
    sizes = _candidate_sizes(mismatch, max(shape[d] for d in vary), len(vary))
    pattern = "x".join("S" if i in vary else str(s) for i, s in enumerate(shape))
    fits: list[list[int]] = []
    through: list[int] | None = None
    deadline = time.monotonic() + SEARCH_SECONDS
    for size in sizes:
        if time.monotonic() > deadline or len(fits) >= MAX_FITS:
            break
        candidate = [size if i in vary else s for i, s in enumerate(shape)]
        whole, reached = probe(candidate, layer)
        if reached and (through is None or size < through[vary[0]]):
            through = candidate
        if whole:
            fits.append(candidate)
    fits.sort()
    hints = []
    if mismatch.kind == "spatial" and through is not None:
        hints.append(
            f"the smallest input of the form {pattern} that gets through this layer is {format_shape(through)}"
        )
    if fits:
        hints.append(
            f"inputs that fit the model: {format_shapes(fits)}"
            if len(fits) > 1
            else f"an input that fits the model: {format_shape(fits[0])}"
        )
    elif time.monotonic() <= deadline:
        hints.append(f"no input of the form {pattern} with S ≤ {max(sizes)} fits the model")
    return hints


def _candidate_sizes(mismatch: Mismatch, size: int, spatial_dims: int) -> list[int]:
    """Sizes to try for the varied dims, most promising first, at most MAX_PROBES of them.

    A feature count after flatten grows like S**spatial_dims, so the size that turns the count
    the layer got into the one it wants is estimated first, with its neighbours.
    """
    first: list[int] = []
    if mismatch.kind == "features" and mismatch.wanted and mismatch.fits_input and mismatch.fits_input > 0:
        estimate = round(size * (mismatch.wanted / mismatch.fits_input) ** (1 / spatial_dims))
        first = list(range(max(1, estimate - 8), estimate + 9))
    top = min(max(4 * size, 64), 1024)
    return (first + [s for s in range(1, top + 1) if s not in first])[:MAX_PROBES]


def module_probe(model: nn.Module, inputs: Sequence[Any]) -> Probe:
    """A probe for any module: runs it on stand-ins for its weights (uninitialised, on the device
    devices.py picks for their size), so the user's module and its weights stay as they are."""
    tensors = [t for _, t in [*model.named_parameters(), *model.named_buffers()]]
    if any(isinstance(t, nn.parameter.UninitializedParameter) for t in tensors):
        return lambda shape, layer: (False, False)  # lazy weights never materialised: nothing to try
    size = sum(t.numel() * t.element_size() for t in [*tensors, *[i for i in inputs if isinstance(i, Tensor)]])
    device = devices.for_bytes(size)
    weights = {
        n: torch.empty(t.shape, dtype=t.dtype, device=device)
        for n, t in [*model.named_parameters(), *model.named_buffers()]
    }
    rest = [torch.zeros(t.shape, dtype=t.dtype, device=device) for t in inputs[1:] if isinstance(t, Tensor)]

    def probe(first_shape: list[int], layer: str) -> tuple[bool, bool]:
        reached = [False]
        module = model.get_submodule(layer) if layer else model
        handle = module.register_forward_hook(lambda *_: reached.__setitem__(0, True))
        try:
            first = torch.zeros(first_shape, dtype=inputs[0].dtype, device=device)
            with torch.no_grad():
                functional_call(model, weights, (first, *rest))
            return True, True
        except Exception:  # noqa: BLE001 - a candidate that does not fit is the expected outcome
            return False, reached[0]
        finally:
            handle.remove()

    return probe
