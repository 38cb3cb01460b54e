"""Models that punish an inspector which touches them: each writes somewhere during forward or
`train()`, or holds state a careless run would replace. Every one is inspected in
tests/test_untouched.py and must come back bit-exact.

Each entry: a factory, and the inputs (positional tuple, keyword dict) of its real forward.
"""

from __future__ import annotations

import random
import threading

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations, spectral_norm, weight_norm


class TrainSideEffects(nn.Module):
    """`train()` freezes and unfreezes the backbone: an inspector that calls `eval()` on the
    user's module flips `requires_grad`."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def train(self, mode: bool = True) -> TrainSideEffects:
        super().train(mode)
        for p in self.backbone.parameters():
            p.requires_grad_(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x).relu())


class MadeInForward(nn.Module):
    """Attributes, a counter and a submodule made on the first call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.last_shape = tuple(x.shape)
        if not hasattr(self, "proj"):
            self.proj = nn.Linear(x.shape[-1], 4)
        return self.proj(x)


class Normed(nn.Module):
    """Old-style spectral_norm and weight_norm (forward pre-hooks that set `weight`) beside the
    parametrization versions."""

    def __init__(self) -> None:
        super().__init__()
        self.a = spectral_norm(nn.Linear(6, 6))
        self.b = weight_norm(nn.Linear(6, 6))
        self.c = parametrizations.spectral_norm(nn.Linear(6, 6))
        self.d = parametrizations.weight_norm(nn.Linear(6, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.d(self.c(self.b(self.a(x))))


class Random(nn.Module):
    """Draws from torch's, Python's and numpy's generators in forward, and drops out even in eval."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn_like(x) * random.random() * float(np.random.rand())
        return F.dropout(self.fc(x + noise), p=0.5, training=True)


class AnchorCache(nn.Module):
    """Caches a tensor per (device, size), like torchvision's AnchorGenerator: a run on meta or on
    stand-ins that wrote here would break the next real forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self._cache: dict[tuple[str, int], torch.Tensor] = {}

    def anchors(self, x: torch.Tensor) -> torch.Tensor:
        key = (str(x.device), x.shape[-1])
        if key not in self._cache:
            self._cache[key] = torch.arange(x.shape[-1], device=x.device, dtype=x.dtype)
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.anchors(x)


class FrozenBatchNorm2d(nn.Module):
    """torchvision's: BatchNorm with every statistic a buffer."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.rand(n) + 0.5)
        self.register_buffer("bias", torch.rand(n))
        self.register_buffer("running_mean", torch.rand(n))
        self.register_buffer("running_var", torch.rand(n) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + 1e-5).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


class Norms(nn.Module):
    """A frozen BatchNorm, a BatchNorm left in train mode (a training forward would move its
    running statistics), and frozen parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.frozen = FrozenBatchNorm2d(4)
        self.bn = nn.BatchNorm2d(4)
        self.conv.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.frozen(self.conv(x)))


class Shared(nn.Module):
    """One module under two names (CoaT's shared position encoders), and a tied weight."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(4, 4)
        self.enc_again = self.enc
        self.out = nn.Linear(4, 4)
        self.out.weight = self.enc.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.enc_again(self.enc(x)))


class Recurrent(nn.Module):
    """An LSTM: its `_flat_weights` list points at its parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 5, num_layers=2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


class Positions(nn.Module):
    """BERT's integer `position_ids` buffer: read as an index, garbage in it makes a false failure."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(50, 8)
        self.positions = nn.Embedding(16, 8)
        self.register_buffer("position_ids", torch.arange(16).expand(1, -1), persistent=False)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.tokens(ids) + self.positions(self.position_ids[:, : ids.shape[1]])
        if attention_mask is not None:
            x = x * attention_mask[..., None]
        return x


class DataDependent(nn.Module):
    """nonzero, a boolean mask and .item(): the meta device cannot run them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        keep = y[y > -1e9]  # every value: a shape only real values decide
        return keep[: int(torch.count_nonzero(keep).item())].sum() + y


class Uncopyable(nn.Module):
    """Holds a lock, which deepcopy refuses (the copy shares it), and fills a cache and a history."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.fc = nn.Linear(3, 3)
        self.seen = 0
        self.cache: dict[str, torch.Tensor] = {}
        self.history: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += 1
        self.made_here = True
        self.history.append(1)
        if "bias" not in self.cache:
            self.cache["bias"] = self.fc.weight.sum(1)
        return self.fc(x) + self.cache["bias"]


class RefusesCopies(Uncopyable):
    """A class whose own __deepcopy__ refuses: run in place, its attributes and containers put back."""

    def __deepcopy__(self, memo: dict) -> RefusesCopies:
        raise TypeError("this module cannot be copied")


class WritesItsWeights(nn.Module):
    """WGAN's weight clipping and a running average kept in a frozen Parameter: in-place writes
    to parameters during forward."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.average = nn.Parameter(torch.zeros(3), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.fc.weight.data.clamp_(-0.01, 0.01)
        y = self.fc(x)
        self.average.mul_(0.9).add_(y.detach().mean(0), alpha=0.1)
        return y


class WritesItsInput(nn.Module):
    """Scales its input in place: the caller's tensor must not change."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mul_(2))


class ScriptedInside(nn.Module):
    """A TorchScript submodule inside a Python one: it takes no hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.sub = torch.jit.script(nn.Linear(4, 3))
        self.out = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.sub(x))


class Hooked(nn.Module):
    """The user's own hooks, which must stay exactly as registered."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.seen: list[tuple[int, ...]] = []
        self.fc.register_forward_hook(lambda m, i, o: None)
        self.register_forward_pre_hook(lambda m, a: None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Tricky(nn.Module):
    """Several of the above at once, in train mode."""

    def __init__(self) -> None:
        super().__init__()
        self.side = TrainSideEffects()
        self.made = MadeInForward()
        self.random = Random()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.random(self.made(self.side(x)).repeat(1, 2)[:, :5])


def _image() -> tuple[tuple[torch.Tensor, ...], dict]:
    return (torch.randn(2, 3, 8, 8),), {}


CATALOGUE = {
    "train_side_effects": (TrainSideEffects, lambda: ((torch.randn(2, 8),), {})),
    "made_in_forward": (MadeInForward, lambda: ((torch.randn(2, 7),), {})),
    "spectral_and_weight_norm": (Normed, lambda: ((torch.randn(2, 6),), {})),
    "random_in_forward": (Random, lambda: ((torch.randn(2, 5),), {})),
    "anchor_cache": (AnchorCache, _image),
    "frozen_batchnorm_and_frozen_params": (Norms, _image),
    "shared_and_tied": (Shared, lambda: ((torch.randn(2, 4),), {})),
    "lstm": (Recurrent, lambda: ((torch.randn(2, 3, 6),), {})),
    "integer_buffer": (
        Positions,
        lambda: ((torch.randint(0, 50, (2, 10)),), {"attention_mask": torch.ones(2, 10, dtype=torch.long)}),
    ),
    "data_dependent": (DataDependent, lambda: ((torch.randn(2, 6),), {})),
    "uncopyable": (Uncopyable, lambda: ((torch.randn(2, 3),), {})),
    "refuses_copies": (RefusesCopies, lambda: ((torch.randn(2, 3),), {})),
    "writes_its_weights": (WritesItsWeights, lambda: ((torch.randn(2, 4),), {})),
    "writes_its_input": (WritesItsInput, lambda: ((torch.randn(2, 4),), {})),
    "scripted_submodule": (ScriptedInside, lambda: ((torch.randn(2, 4),), {})),
    "users_hooks": (Hooked, lambda: ((torch.randn(2, 3),), {})),
    "tricky_in_train_mode": (Tricky, lambda: ((torch.randn(2, 8),), {})),
}
