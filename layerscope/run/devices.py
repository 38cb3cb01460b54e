"""Where layerscope runs a model: real CPU tensors while it is small and cheap, the meta device above.

Meta allocates nothing and computes nothing, so any size runs there in the same time. Its cost
is fixed: the first meta op in a process imports torch's symbolic-shape machinery (sympy,
~0.25 s), and without `_torch_compat.UncompiledDispatchMode` also torch._dynamo (~0.7 s). Recurrent layers run
there step by step in Python. A model whose weights, inputs and activations fit in
CPU_BUDGET_BYTES and whose multiply-adds fit in CPU_BUDGET_MACS runs on uninitialised CPU
storage instead: LeNet costs ~0.01 s there. The builder checks both budgets before each layer
runs, so a large model stops on the CPU before its first expensive layer and starts again on meta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from layerscope.errors import UsageError

CPU_BUDGET_BYTES = 256 << 20  # weights, inputs and activations a CPU run may hold
CPU_BUDGET_MACS = 500_000_000  # multiply-adds a CPU run may do: ~0.05 s on two cores


class Restart(BaseException):
    """A run that must start again elsewhere. (Not an Exception: a model's own failure handling,
    and the trace's, must not take it for the model rejecting its input.)"""


class OverBudget(Restart):
    """A CPU run passed a budget: start again on meta."""


class WritesWeights(Restart):
    """A run on the user's own weight storage was about to write it in place (WGAN's clamp_, a
    running average in a Parameter): start again on copies of the weights."""


LIGHT_LAYER_MACS = 10_000_000  # meta spends ~0.3 ms of Python on a layer, about what 10 M multiply-adds take on a core
CPU_BUDGET_MACS_MOST = 4_000_000_000  # ~0.2 s of work on one core


class WorkBudget:
    """The multiply-adds a CPU run has done, charged leaf by leaf before each runs (run.trace's
    `before_leaf`), and the bytes it holds, charged after (`after_leaf`). Past CPU_BUDGET_MACS the
    run goes on only while its layers so far average at most LIGHT_LAYER_MACS, up to
    CPU_BUDGET_MACS_MOST: meta's cost grows with the layers, the CPU's with the work, so a model of
    many light layers (a ViT-Tiny: 1.3 G over 150 layers) finishes faster on the CPU and one of
    heavy layers (a ResNet-18: 1.8 G over 60) on meta.
    The call that passes raises OverBudget instead. Counts, not a clock: the same model makes the
    same choice on any machine."""

    def __init__(self, held_bytes: int = 0):
        self.used = 0
        self.layers = 0
        self.held = held_bytes  # weights, inputs, and the outputs of the layers run so far

    def charge(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.used += estimated_macs(module, args)
        self.layers += 1
        if self.held + _upsampled_bytes(module, args) > CPU_BUDGET_BYTES:
            raise OverBudget  # an Upsample whose output alone would pass the byte budget: not made
        if self.used > CPU_BUDGET_MACS and (
            self.used > CPU_BUDGET_MACS_MOST or self.used > LIGHT_LAYER_MACS * self.layers
        ):
            raise OverBudget

    def hold(self, module: nn.Module, output_bytes: int) -> None:
        """After a leaf ran: its output's bytes count against CPU_BUDGET_BYTES (a layer that made a
        1 GB tensor stops the run there, before the next layer works on it)."""
        self.held += output_bytes
        if self.held > CPU_BUDGET_BYTES:
            raise OverBudget


def _upsampled_bytes(module: nn.Module, args: tuple[Any, ...]) -> int:
    """The bytes an nn.Upsample's output will take, from its scale or size, before it runs (other
    layers' outputs are counted after they run: most are no bigger than their input)."""
    x = next((a for a in args if isinstance(a, Tensor)), None)
    if not isinstance(module, nn.Upsample) or x is None or x.dim() < 3:
        return 0
    spatial = x.dim() - 2
    if module.size is not None:
        sizes = module.size if isinstance(module.size, tuple) else (module.size,) * spatial
        positions = math.prod(int(s) for s in sizes)
    else:
        scale = module.scale_factor
        scales = scale if isinstance(scale, tuple) else (scale,) * spatial
        positions = math.prod(int(d * float(f)) for d, f in zip(x.shape[2:], scales, strict=False))
    return x.shape[0] * x.shape[1] * positions * x.element_size()


def named(name: str) -> torch.device:
    """The device a --device name (or device=) asks for: cpu, meta, or cuda where there is one."""
    if name == "cpu":
        return torch.device(name)
    if name == "meta":
        return torch.device("meta")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device {name!r}: CUDA is not available on this machine", hint="use auto, cpu or meta")
        return torch.device(name)
    raise UsageError(f"unknown device {name!r}", hint="use auto, cpu or meta (or cuda where there is a GPU)")


def for_bytes(nbytes: int) -> torch.device:
    """The device for a run that needs `nbytes` of tensors."""
    return torch.device("cpu" if nbytes <= CPU_BUDGET_BYTES else "meta")


def estimated_macs(module: nn.Module, args: Sequence[Any]) -> int:
    """Multiply-adds of `module(*args)`, estimated before it runs: its weights times the positions
    they are applied at (tokens for a Linear or an LSTM, pixels for a convolution).

    Exact for Linear; for a convolution, its input positions over its strides (padding and
    dilation aside). Only the device choice uses it.
    """
    x = next((a for a in args if isinstance(a, Tensor)), None)
    if x is None or x.dim() == 0:
        return 0
    if getattr(module, "op", None) == "attention":  # q·kᵀ and weights·v over the whole sequence
        return 2 * x.numel() * x.shape[-2] if x.dim() >= 2 else 0
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return x.numel() * module.embedding_dim  # a lookup: one copy per output value
    weights = sum(p.numel() for p in module.parameters() if not isinstance(p, nn.parameter.UninitializedParameter))
    if weights == 0:
        return x.numel()
    features = x.shape[1] if hasattr(module, "in_channels") and x.dim() >= 3 else x.shape[-1]
    stride = getattr(module, "stride", 1)  # a strided convolution is applied at fewer positions
    steps = math.prod(stride) if isinstance(stride, tuple) and hasattr(module, "in_channels") else 1
    return weights * (x.numel() // max(features, 1)) // max(steps, 1)
