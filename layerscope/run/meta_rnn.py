"""Recurrent layers on the meta device, answered from shapes instead of run step by step.

On meta, nn.LSTM, nn.GRU and nn.RNN run torch's decomposition: a handful of ops per time step,
each through the op counter and a Python meta kernel — timm's sequencer2d_s took 5 s on meta
against 0.25 s for a real CPU forward. On a meta shadow (run/shadow.py) each such layer's
forward is replaced by this one: it checks the input as torch does (the layer's own public
`check_forward_args`), makes the outputs' shapes, and issues the matmuls whose FLOPs equal the
CPU's step-by-step path, batched over time: per layer and direction, the input projection
(T·B × I by I × G), the hidden projections (T steps of B × R by R × G) and LSTM's `proj_size`
projection (T steps of B × H by H × P), G being 4H (LSTM), 3H (GRU) or H (RNN).
tests/test_counting.py compares shapes and FLOPs with a real CPU run, config by config.
Packed sequences and anything unusual take the layer's own forward.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


def answer_by_shape(model: nn.Module) -> None:
    """Give every recurrent layer of `model` (a meta shadow) the shape-only forward."""
    for module in model.modules():
        if type(module) in GATES:
            module.forward = partial(_forward, module)


def _forward(module: nn.RNNBase, input: Any, hx: Any = None) -> Any:  # noqa: A002 - torch's own names
    if not isinstance(input, Tensor) or input.dim() not in (2, 3) or not input.is_meta:
        return type(module).forward(module, input, hx)
    batched = input.dim() == 3
    x = input if batched else input.unsqueeze(1)
    if batched and module.batch_first:
        x = x.transpose(0, 1)
    steps, batch = x.shape[0], x.shape[1]
    directions = 2 if module.bidirectional else 1
    hidden, out = module.hidden_size, module.proj_size or module.hidden_size
    lstm = isinstance(module, nn.LSTM)
    h0 = _state(module, directions * module.num_layers, batch, out, x)
    c0 = _state(module, directions * module.num_layers, batch, hidden, x)
    given = _batched_state(hx, batched)
    laid_out = input if batched else input.unsqueeze(0 if module.batch_first else 1)  # as the check expects
    module.check_forward_args(laid_out, given if given is not None else ((h0, c0) if lstm else h0), None)
    _count_matmuls(module, steps * batch, directions, x)
    output = _empty(x, steps, batch, directions * out)
    if batched and module.batch_first:
        output = output.transpose(0, 1).contiguous()
    if not batched:
        output, h0, c0 = output.squeeze(1), h0.squeeze(1), c0.squeeze(1)
    return (output, (h0, c0)) if lstm else (output, h0)


def _count_matmuls(module: nn.RNNBase, rows: int, directions: int, x: Tensor) -> None:
    """The matmuls of the CPU's path, batched over time steps (the counter counts 2·m·n·k each)."""
    hidden, out = module.hidden_size, module.proj_size or module.hidden_size
    gates = GATES[type(module)] * hidden
    features = module.input_size
    for _ in range(module.num_layers):
        for _ in range(directions):
            torch.mm(_matrix(x, rows, features), _matrix(x, features, gates))
            torch.mm(_matrix(x, rows, out), _matrix(x, out, gates))
            if module.proj_size:
                torch.mm(_matrix(x, rows, hidden), _matrix(x, hidden, module.proj_size))
        features = out * directions


def _matrix(like: Tensor, rows: int, columns: int) -> Tensor:
    return torch.empty(rows, columns, dtype=like.dtype, device="meta")


def _empty(like: Tensor, *shape: int) -> Tensor:
    return torch.empty(shape, dtype=like.dtype, device="meta")


def _state(module: nn.RNNBase, layers: int, batch: int, size: int, x: Tensor) -> Tensor:
    return _empty(x, layers, batch, size)


def _batched_state(hx: Any, batched: bool) -> Any:
    """hx as the batched check expects it: an unbatched layer's (layers, size) state gets a batch of 1."""
    if hx is None or batched:
        return hx
    if isinstance(hx, tuple):
        return tuple(h.unsqueeze(1) for h in hx)
    return hx.unsqueeze(1)
