"""Models for tests/test_importer.py that the CLI imports by name (tests.import_models:Viewed)."""

from __future__ import annotations

import torch
from torch import nn


class Viewed(nn.Module):
    """The tester's vw.py: the batch read in the forward (`x.shape[0]`) and reshaped with."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = self.c(x).view(b, -1)
        return self.fc(x).reshape(b, 5, 1) * 2


class Tied(nn.Module):
    """The tester's tt.py in small: the output head is the token embedding (GPT-2's tie)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.body = nn.Sequential(nn.Linear(16, 16), nn.GELU())
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.emb(idx)))
