"""Models with higher-order operators, for tests/test_higher_order.py.

Kept out of the test module: torch.cond compiles its branches with dynamo, which does not trace
lambdas of a module that pytest rewrote for its assertions.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class Cond(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 4)
        self.pad = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cond(x.sum() > 0, lambda t: self.a(t), lambda t: self.pad(self.b(t)), (x,))


class Loop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch._higher_order_ops import while_loop

        start = torch.zeros((), dtype=torch.int64)
        _, out = while_loop(lambda i, t: i < 3, lambda i, t: (i + 1, self.fc(t)), (start, x))
        return out


class Checkpointed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(checkpoint(self.fc, x, use_reentrant=False))


class Flex(nn.Module):
    """flex_attention over two heads of width 8, q = k = v."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.nn.attention.flex_attention import flex_attention

        q = self.q(x).view(x.shape[0], 2, x.shape[1], 8)
        return flex_attention(q, q, q)
