"""What layerscope sees of each aten op while a model runs: its FLOPs, and on meta a quick answer.

OpCounter is a TorchDispatchMode that counts FLOPs exactly as torch's FlopCounterMode does (its
formula registry, the same decomposition of composite ops) without FlopCounterMode's own
per-module bookkeeping, which layerscope's hooks already do: that bookkeeping doubles the cost
of a meta-device forward.

On the meta device it also answers a few common ops from their inputs' shapes instead of running
their meta kernels, which for these ops are Python decompositions: eval-mode BatchNorm runs ~10
elementwise reference ops (0.7 ms a call, 90% of a ResNet-50 forward on meta), LayerNorm 0.8 ms,
ReLU 0.25 ms. Each answer has the shape, dtype and strides the meta kernel gives (tested op by
op). An answer is only given when the inputs are plainly valid (meta, contiguous, floating, the
shapes the op needs); anything else runs the real kernel, so a wrong input still fails with
torch's own message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from layerscope._torch_compat import (
    FLOP_FORMULAS,
    LAYOUT_QUERIES,
    PRIM_DEVICE,
    UncompiledDispatchMode,
    aten_ops,
    cpu_flash_attention_formula,
    higher_order_op,
    is_higher_order,
)
from layerscope.run.devices import WritesWeights

aten = torch.ops.aten

# torch's FLOP formulas, plus one it lacks: the CPU's fused attention kernel (see _torch_compat).
FORMULAS = {**FLOP_FORMULAS, **cpu_flash_attention_formula()}
COND, WHILE_LOOP = higher_order_op("cond"), higher_order_op("while_loop")


def _plain(x: Any) -> bool:
    """A tensor whose ops can be answered by shape: meta, contiguous and floating."""
    return isinstance(x, Tensor) and x.is_meta and x.is_floating_point() and x.is_contiguous()


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _empty(shape: Any, dtype: torch.dtype) -> Tensor:
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


def _stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """Norm statistics are kept in float32 for half-precision inputs."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _like_first(x: Any, *_: Any, **__: Any) -> Any:
    """Elementwise op of one tensor (any further arguments are scalars): a new tensor like it."""
    return _empty(x.shape, x.dtype) if _plain(x) else NotImplemented


def _first_in_place(x: Any, *_: Any, **__: Any) -> Any:
    return x if _plain(x) else NotImplemented


def _pairs_with(a: Any, b: Any) -> bool:
    return _plain(a) and (_number(b) or (_plain(b) and b.shape == a.shape and b.dtype == a.dtype))


def _elementwise(a: Any, b: Any, *_: Any, **__: Any) -> Any:
    """Elementwise op of a tensor and a same-shape same-dtype tensor or a number."""
    return _empty(a.shape, a.dtype) if _pairs_with(a, b) else NotImplemented


def _elementwise_in_place(a: Any, b: Any, *_: Any, **__: Any) -> Any:
    return a if _pairs_with(a, b) else NotImplemented


def _has_dim(x: Tensor, dim: int) -> bool:
    return -max(x.dim(), 1) <= dim < max(x.dim(), 1)


def _softmax(x: Any, dim: int, dtype: torch.dtype | None = None) -> Any:
    """_safe_softmax: same shape; a dtype argument, if any, must be the input's."""
    if _plain(x) and _has_dim(x, dim) and dtype in (None, x.dtype):
        return _empty(x.shape, x.dtype)
    return NotImplemented


def _triangle(x: Any, diagonal: int = 0) -> Any:
    """tril, triu: need a matrix at least."""
    return _empty(x.shape, x.dtype) if _plain(x) and x.dim() >= 2 else NotImplemented


def _gelu(x: Any, approximate: str = "none") -> Any:
    return _like_first(x) if approximate in ("none", "tanh") else NotImplemented


def _per_channel(x: Tensor, *tensors: Any) -> bool:
    channels = x.shape[1]
    return all(t is None or (isinstance(t, Tensor) and t.is_meta and tuple(t.shape) == (channels,)) for t in tensors)


def _batch_norm(x: Any, weight: Any, bias: Any, mean: Any, var: Any, *_: Any) -> Any:
    """native_batch_norm and its eval-mode form: (output, saved mean, saved inverse std)."""
    if not (_plain(x) and x.dim() >= 2 and _per_channel(x, weight, bias, mean, var)):
        return NotImplemented
    stats = _stats_dtype(x.dtype)
    return _empty(x.shape, x.dtype), _empty((x.shape[1],), stats), _empty((x.shape[1],), stats)


def _layer_norm(x: Any, normalized_shape: Any, weight: Any, bias: Any, *_: Any) -> Any:
    """native_layer_norm: (output, mean, rstd), statistics with the normalised dims kept as 1."""
    shape = tuple(normalized_shape)
    if not (_plain(x) and 0 < len(shape) <= x.dim() and tuple(x.shape[x.dim() - len(shape) :]) == shape):
        return NotImplemented
    if not all(t is None or (isinstance(t, Tensor) and t.is_meta and tuple(t.shape) == shape) for t in (weight, bias)):
        return NotImplemented
    kept = tuple(x.shape[: x.dim() - len(shape)]) + (1,) * len(shape)
    stats = _stats_dtype(x.dtype)
    return _empty(x.shape, x.dtype), _empty(kept, stats), _empty(kept, stats)


def _same_dtype(*tensors: Tensor) -> bool:
    return len({t.dtype for t in tensors}) == 1


def _operand(x: Any) -> bool:
    """A matmul operand answerable by shape: meta and floating, contiguous or the transpose of a
    contiguous tensor (a Linear's weight arrives as `weight.t()`; attention's keys transposed)."""
    return (
        isinstance(x, Tensor)
        and x.is_meta
        and x.is_floating_point()
        and (x.is_contiguous() or (x.dim() >= 2 and x.transpose(-2, -1).is_contiguous()))
    )


def _mm(a: Any, b: Any) -> Any:
    if _operand(a) and _operand(b) and a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0] and _same_dtype(a, b):
        return _empty((a.shape[0], b.shape[1]), a.dtype)
    return NotImplemented


def _addmm(bias: Any, a: Any, b: Any, **kwargs: Any) -> Any:
    out = _mm(a, b)
    if out is NotImplemented or not (_plain(bias) and _same_dtype(bias, a)):
        return NotImplemented
    fits = bias.dim() <= 2 and all(s in (1, o) for s, o in zip(reversed(bias.shape), reversed(out.shape), strict=False))
    return out if fits else NotImplemented


def _bmm(a: Any, b: Any) -> Any:
    if (
        _operand(a)
        and _operand(b)
        and a.dim() == 3
        and b.dim() == 3
        and a.shape[0] == b.shape[0]
        and a.shape[2] == b.shape[1]
        and _same_dtype(a, b)
    ):
        return _empty((a.shape[0], a.shape[1], b.shape[2]), a.dtype)
    return NotImplemented


def _table(rules: dict[Callable[..., Any], tuple[str, ...]]) -> dict[Any, Callable[..., Any]]:
    """{answer: op names} → {aten op: answer}, for the ops this torch has (private ones come and go)."""
    return {op: answer for answer, names in rules.items() for op in aten_ops(*names)}


SHORTCUTS: dict[Any, Callable[..., Any]] = _table(
    {
        _like_first: ("relu", "silu", "sigmoid", "tanh", "rsqrt", "sqrt", "exp", "neg"),
        _first_in_place: ("relu_", "silu_", "sigmoid_", "tanh_"),
        _elementwise: (
            "add.Tensor",
            "sub.Tensor",
            "mul.Tensor",
            "div.Tensor",
            "add.Scalar",
            "mul.Scalar",
            "div.Scalar",
            "pow.Tensor_Scalar",
        ),
        _elementwise_in_place: ("add_.Tensor", "sub_.Tensor", "mul_.Tensor", "div_.Tensor"),
        _gelu: ("gelu",),
        _triangle: ("tril", "triu"),
        _softmax: ("_safe_softmax",),
        _batch_norm: ("native_batch_norm", "_native_batch_norm_legit_no_training"),
        _layer_norm: ("native_layer_norm",),
        _mm: ("mm",),
        _addmm: ("addmm",),
        _bmm: ("bmm",),
    }
)


class OpCounter(UncompiledDispatchMode):
    """Counts FLOPs like FlopCounterMode, by FORMULAS (running total in `flops`); answers SHORTCUTS on meta.

    Higher-order operators run as they would without the mode: torch.cond takes the branch its
    predicate picks and while_loop loops, both in Python so their ops are counted; any other runs
    with the mode off, counted by its formula where torch has one (flex_attention). What cannot be
    counted is named in `uncounted`, never counted as 0.
    """

    supports_higher_order_operators = True

    def __init__(self, guarded: frozenset[int] = frozenset()) -> None:
        super().__init__()
        self.flops = 0
        self.uncounted: list[str] = []  # why FLOPs are missing, an entry per operator that was not counted
        self.guarded = guarded  # storages (by data_ptr) no op may write: a user's own weights
        self.flow: Callable[[Any, tuple[Any, ...], dict[str, Any], Any], None] | None = None  # run.flow.Flow.op

    def _check_writes(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise WritesWeights before an in-place op (`clamp_`, `copy_`, `out=`) writes a guarded storage."""
        name = func.overloadpacket.__name__
        written: list[Any] = [kwargs.get("out")]
        if (name.endswith("_") and not name.endswith("__")) or name.startswith("__i"):
            written.append(args[0] if args else None)
        for value in written:
            for t in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(t, Tensor) and not t.is_meta and t.untyped_storage().data_ptr() in self.guarded:
                    raise WritesWeights

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in LAYOUT_QUERIES:
            return NotImplemented
        if is_higher_order(func):
            return self._higher_order(func, args, kwargs)
        if self.guarded:
            self._check_writes(func, args, kwargs)
        shortcut = SHORTCUTS.get(func)
        if shortcut is not None:
            out = shortcut(*args, **kwargs)
            if out is not NotImplemented:
                return self._count(func, out, args, kwargs)
        if func is not PRIM_DEVICE:  # composite ops count as what they decompose into
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        return self._count(func, func(*args, **kwargs), args, kwargs)

    def _count(self, func: Any, out: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        formula = FORMULAS.get(func.overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        if self.flow is not None:  # every op that ran reaches here; a decomposed one through its parts
            self.flow(func, args, kwargs, out)
        return out

    def _higher_order(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a higher-order operator as torch would, counting what can be counted."""
        if func is COND:
            return self._cond(*args, **kwargs)
        if func is WHILE_LOOP:
            return self._while_loop(*args, **kwargs)
        out = func(*args, **kwargs)  # the mode is off while it handles an op: the inner ops go unseen
        formula = FORMULAS.get(func)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        else:
            self.uncounted.append(f"{func.name()} (no FLOP formula)")
        return out

    def _cond(self, pred: Any, true_fn: Any, false_fn: Any, operands: Any) -> Any:
        """torch.cond: the branch the predicate picks. On meta it has no value: the first branch gives
        the shapes (both branches must give the same) and the FLOPs are unknown."""
        unknown = isinstance(pred, Tensor) and pred.is_meta
        with self:
            out = (true_fn if unknown or bool(pred) else false_fn)(*operands)
        if unknown:  # noted after the branch ran, so the note goes to the layer that called cond
            self.uncounted.append("cond (its predicate has no value on meta)")
        return out

    def _while_loop(
        self, cond_fn: Any, body_fn: Any, carried_inputs: Any, additional_inputs: Any = (), **_: Any
    ) -> Any:
        """while_loop: the body while the condition holds. On meta the condition has no value: one pass
        of the body gives the shapes (the loop keeps them) and the FLOPs are unknown."""
        carried, extra = tuple(carried_inputs), tuple(additional_inputs)
        unknown = any(isinstance(x, Tensor) and x.is_meta for x in carried)
        with self:
            if unknown:
                carried = tuple(body_fn(*carried, *extra))
            else:
                while bool(cond_fn(*carried, *extra)):
                    carried = tuple(body_fn(*carried, *extra))
        if unknown:
            self.uncounted.append("while_loop (its condition has no value on meta)")
        return carried
