"""Attention models a tester drew with `layerscope graph` (tests/test_graph.py, tests/test_flow.py):
nn.MultiheadAttention calls none of its children (it uses out_proj's weights without calling it), so
the data flow takes it for one node fed by its query, key and value."""

from __future__ import annotations

import torch
from torch import nn


class SelfAttention(nn.Module):
    """attn(x, x, x): the input is the query, key and value."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x)[0]


class NormThenAttention(nn.Module):
    """ln → attn(y, y, y): the LayerNorm feeds the attention."""

    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln(x)
        return self.attn(y, y, y, need_weights=False)[0]


class CrossAttention(nn.Module):
    """attn(x, y, y) with y = ln(x): the query from the input, key and value from the LayerNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln(x)
        return self.attn(x, y, y)[0]


class Keeper(nn.Module):
    """A module with a child it never calls, that keeps a tensor its own code made from two producers."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(8, 8)
        self.kept: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.kept = x * y
        return x + y


class KeptThenJoined(nn.Module):
    """Uses the tensor `keeper` kept after it returned, with the input: a join of keeper and the input."""

    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(8)
        self.keeper = Keeper()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.keeper(x, self.ln(x))
        assert self.keeper.kept is not None
        return torch.cat([self.keeper.kept, x], -1) + torch.cat([out, out], -1)
