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
