"""An independent account of a forward pass, for comparing layerscope's reports with: each module
call's output shapes from hooks of our own on a copy, and the FLOPs torch's FlopCounterMode counts."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def shapes(value: Any) -> list[list[int]]:
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in shapes(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in shapes(v)]
    return []


def real_run(model: nn.Module, args: tuple = (), kwargs: dict | None = None) -> tuple[list[tuple[str, list]], int]:
    """Each module call's (name, output shapes) in the order they finish, and the FLOPs, from a
    plain eval forward of a copy. FlopCounterMode sees only the ops it has formulas for, so the
    forward takes the paths it can count: the math attention backend (not the CPU's fused kernel),
    nn.MultiheadAttention without its fused fast path, and LSTMs without oneDNN's single kernel."""
    twin = copy.deepcopy(model).eval()
    calls: list[tuple[str, list]] = []
    names = {id(m): n for n, m in twin.named_modules()}
    handles = [m.register_forward_hook(lambda m, a, o: calls.append((names[id(m)], shapes(o)))) for m in twin.modules()]
    counter = FlopCounterMode(display=False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), torch.backends.mkldnn.flags(enabled=False), counter:
            twin(*args, **(kwargs or {}))
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    for h in handles:
        h.remove()
    return calls, counter.get_total_flops()
