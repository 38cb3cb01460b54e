"""Python-defined models for tests/test_python_models.py: `layerscope inspect tests.python_models:Classifier`."""

import torch
from torch import nn


class Classifier(nn.Module):
    """The tutorial's ConvNet + flatten + Linear 3072→10."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.convs = nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(3, 3, 3, padding=1), nn.ReLU())])
        self.fc = nn.Linear(3072, classes)

    def forward(self, x):
        return self.fc(self.convs(x).flatten(1))


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 16)
        self.cls = nn.Linear(16, 3)
        self.box = nn.Linear(16, 4)

    def forward(self, x):
        h = self.body(x).relu()
        return {"logits": self.cls(h), "boxes": self.box(h), "extra": [h, (h.sum(),)]}


def small(width: int = 4):
    return nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1))


def not_a_model():
    return 42


def broken():
    raise RuntimeError("no weights here")


class Tagger(nn.Module):
    """Token ids and an optional keyword mask, like a Hugging Face encoder: ids past the vocabulary
    or a mask of zeros would make a made-up input misleading."""

    def __init__(self, vocab: int = 100, width: int = 8, pad: int | None = None, tags=(1, 2)):
        super().__init__()
        self.tags = tuple(tags)
        self.pad = pad
        self.embed = nn.Embedding(vocab, width)
        self.out = nn.Linear(width, len(self.tags))

    def forward(self, ids, attention_mask=None):
        x = self.embed(ids)
        if attention_mask is not None:
            if not bool((attention_mask == 1).all()):
                raise ValueError("this model wants a mask of ones")
            x = x * attention_mask[..., None]
        return self.out(x)


class Pair(nn.Module):
    """Takes a list of two tensors and a dict: nested inputs."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, pair, extra):
        return self.fc(pair[0] + pair[1] + extra["bias"])


def scripted():
    import torch

    return torch.jit.script(small())


class Buggy(nn.Module):
    """The "Building models" tutorial's slip: torch.functional is not torch.nn.functional."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        import torch.functional as F

        return F.max_pool2d(self.conv(x), 2)


class Residual(nn.Module):
    """A residual block written in Python: its `out += x` and `torch.cat` are not modules."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        out = self.conv2(self.relu(self.conv1(x)))
        out += x
        return torch.cat([out, x], 1)


class Gated(nn.Module):
    """A forward torch.fx cannot trace (`if` on a value, `range` of a size) that calls its layers in
    a fixed order: a residual add, a cat, a flatten between two layers, a layer called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.side = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn(self.conv(x)))
        if x.sum() > -1e9:  # always taken: the order of the calls does not depend on the values
            y = self.act(y + self.side(x))
        for _ in range(x.shape[0] // x.shape[0]):
            y = torch.cat([y, self.side(x)], dim=1)
        return self.fc(y.flatten(1))


class Doubled(Gated):
    """Gated with `x * 2` between two layers: a value change no recorded call shows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn(self.conv(x))) * 2
        if x.sum() > -1e9:
            y = self.act(y + self.side(x))
        return self.fc(torch.cat([y, self.side(x)], dim=1).flatten(1))
