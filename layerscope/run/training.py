"""Run stage: what autograd saves for backward in a training-mode forward, call by call.

A second forward, of a shadow of the model (run/shadow.py), in training mode with gradients on,
under torch's saved-tensor hooks: each tensor autograd keeps for the backward is seen as it is
saved. A storage counts once (a view of it, a ReLU done in place on it, the next layer saving the
same tensor as its input), in the call that saved it first; the model's parameters and buffers
and its inputs are not counted (they are held anyway). What the backward allocates, kernels'
scratch space and the allocator's slack are not seen (README "Training memory").

The figure is the CPU's: a run on the CPU is a real training forward (oneDNN as the process has
it); on meta, where torch takes another path than the CPU, the CPU's is taken instead
(_torch_compat.cpu_fused_attention: meta runs attention as the math path, which saves the
attention matrices, where the CPU's fused kernel does not), so meta and the CPU give the same
figure. Afterwards the model, torch's grad mode and every random number generator are as they were.
"""

from __future__ import annotations

import contextlib
import random
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.graph import saved_tensors_hooks
from torch.func import functional_call
from torch.overrides import TorchFunctionMode

from layerscope._torch_compat import aten_ops, cpu_fused_attention
from layerscope.run.counting import OpCounter
from layerscope.run.devices import WritesWeights
from layerscope.run.shadow import restored, shadow, stand_ins, weight_storages
from layerscope.run.trace import CallNames, hook_modules, tensors_in


@dataclass
class Saved:
    """What one training-mode forward saved for backward: bytes in all, and per module call."""

    total_bytes: int
    calls: list[tuple[str, int]] = field(default_factory=list)  # in call order: name, bytes first saved in it
    error: str | None = None  # the training forward failed: the exception, one line
    notes: list[str] = field(default_factory=list)
    trains: set[str] | None = None  # the parameters requiring grad in training mode (after train()); None: as before


def saved_in_training(model: nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any], device: torch.device) -> Saved:
    """Run a shadow of `model` once in training mode on `device` and count what autograd saves."""
    try:
        return _saved(model, args, kwargs, device, share=device.type != "meta")
    except WritesWeights:  # the forward writes its weights in place: again on copies of them
        return _saved(model, args, kwargs, device, share=False)


def _saved(
    model: nn.Module, args: Sequence[Any], kwargs: Mapping[str, Any], device: torch.device, share: bool
) -> Saved:
    copy = shadow(model, device, share_weights=share, by_shape=False)
    in_place = copy.module is None  # a module class that refuses copies: its own, on stand-ins, put back after
    weights = stand_ins(model, device) if in_place else None
    run = model if in_place else copy.module
    assert run is not None
    held = [*run.parameters(), *run.buffers(), *(weights or {}).values(), *tensors_in([list(args), dict(kwargs)])]
    counter = _SavedTensors(held)
    calls = _Calls(run, counter)
    handles = hook_modules(run, calls.pre_hook, calls.post_hook)
    guarded = weight_storages(model) if share and not in_place else frozenset()
    error = None
    trains: set[str] | None = None
    try:
        with (
            restored(model) if in_place else contextlib.nullcontext(),
            _training(run),
            _CpuStatistics(guarded),  # on meta, its shape-only answers; on the CPU, the guard on the weights
            _CpuAttention() if device.type == "meta" else contextlib.nullcontext(),
            saved_tensors_hooks(counter.pack, _unpack),
        ):
            if weights is None:
                trains = {name for name, p in run.named_parameters() if p.requires_grad}
                run(*args, **kwargs)
            else:
                functional_call(run, weights, tuple(args), dict(kwargs))
    except (KeyboardInterrupt, SystemExit, WritesWeights):
        raise
    except Exception as e:  # noqa: BLE001 - a model that fails in training mode only: said, not raised
        error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    finally:
        for handle in handles:
            handle.remove()
    notes = []
    if device.type == "meta" and any(isinstance(m, nn.RNNBase) for m in run.modules()):
        notes.append(
            "training memory on meta: recurrent layers are counted as torch's step-by-step path saves them,"
            " not as the CPU does (its oneDNN LSTM kernel saves a workspace, batch_first a copy of the input);"
            " --device cpu measures the CPU's"
        )
    return Saved(counter.total, [(name, saved) for name, saved in calls.calls], error, notes, trains)


def _unpack(t: Tensor) -> Tensor:
    return t


class _SavedTensors:
    """The pack hook: the bytes of each storage autograd saves, once, leaving out `held`'s."""

    def __init__(self, held: Sequence[Tensor]):
        # the storages are kept referenced for the run, so an id is never reused by another
        self.held = [_storage(t) for t in held]
        self.excluded = {id(s) for s in self.held}
        self.seen: dict[int, Any] = {}
        self.total = 0

    def pack(self, t: Tensor) -> Tensor:
        storage = _storage(t)
        key = id(storage)
        if key not in self.excluded and key not in self.seen:
            self.seen[key] = storage
            self.total += (
                storage.nbytes() if not isinstance(storage, Tensor) else storage.numel() * storage.element_size()
            )
        return t


def _storage(t: Tensor) -> Any:
    """The storage behind `t` (torch keeps one Python object per storage while it is referenced);
    a tensor without one (sparse) stands for itself."""
    try:
        return t.untyped_storage()
    except (RuntimeError, NotImplementedError, TypeError):
        return t


class _Calls:
    """Forward hooks naming each module call as the trace does, with the bytes first saved in it."""

    def __init__(self, model: nn.Module, counter: _SavedTensors):
        self.counter = counter
        self.names = CallNames(model)
        self.calls: list[list[Any]] = []
        self.open: list[tuple[int, int]] = []

    def pre_hook(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        self.open.append((len(self.calls), self.counter.total))
        self.calls.append([self.names.next(module)[0], 0])

    def post_hook(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        index, before = self.open.pop()
        self.calls[index][1] = self.counter.total - before


class _CpuAttention(TorchFunctionMode):
    """On meta, scaled_dot_product_attention as the CPU runs it (see the module's docstring)."""

    def __torch_function__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and args and isinstance(args[0], Tensor) and args[0].is_meta:
            out = cpu_fused_attention(*args, **kwargs)
            if out is not None:
                return out
        return func(*args, **kwargs)


_NORMS = {
    op: weights
    for op, weights in [
        *((op, (1, 2, 3, 4)) for op in aten_ops("native_batch_norm")),
        *((op, (2, 3)) for op in aten_ops("native_layer_norm")),
    ]
}
_REDUCED = (torch.float16, torch.bfloat16)


class _CpuStatistics(OpCounter):
    """The op counter, and on meta the statistics BatchNorm and LayerNorm save (mean, inverse std) in
    the CPU's dtype: the input's, float32 only where its weights or running statistics are float32
    (mixed precision); meta's kernels keep them in float32 for any half-precision input."""

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        out = super().__torch_dispatch__(func, types, args, kwargs)
        weights = _NORMS.get(func)
        if weights is None or not isinstance(out, tuple) or not args[0].is_meta or args[0].dtype not in _REDUCED:
            return out
        others = [args[i] for i in weights if i < len(args) and isinstance(args[i], Tensor)]
        dtype = torch.float32 if any(t.dtype == torch.float32 for t in others) else args[0].dtype
        stats = [s if s.dtype == dtype else torch.empty(s.shape, dtype=dtype, device="meta") for s in out[1:3]]
        return (out[0], *stats, *out[3:])


@contextlib.contextmanager
def _training(model: nn.Module) -> Iterator[None]:
    """Training mode and gradients for the run, warnings kept quiet (the traced run reported them);
    afterwards each module's mode, grad mode and the random number generators (torch's, Python's,
    numpy's: Dropout draws) as they were."""
    modes = [(module, module.training) for module in model.modules()]
    numpy = sys.modules.get("numpy")
    rng = (torch.random.get_rng_state(), random.getstate(), numpy.random.get_state() if numpy is not None else None)
    try:
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            model.train()
            yield
    finally:
        for module, training in modes:
            if module.training != training:
                module.training = training
        torch.random.set_rng_state(rng[0])
        random.setstate(rng[1])
        if numpy is not None and rng[2] is not None:
            numpy.random.set_state(rng[2])
