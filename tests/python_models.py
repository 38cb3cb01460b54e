"""Python-defined models for tests/test_python_models.py: `layerscope inspect tests.python_models:Classifier`."""

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
