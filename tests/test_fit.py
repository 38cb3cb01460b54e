"""report/fit.py's shape rules, each against torch's own answer on meta tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from layerscope.report import fit
from layerscope.spec.ops import FunctionalOp

MODULES = [
    nn.Conv2d(3, 4, 3),
    nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
    nn.Conv2d(3, 4, 3, padding="same"),
    nn.Conv1d(3, 4, 5, stride=3, padding="valid"),
    nn.Conv3d(3, 2, 2, stride=2),
    nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
    nn.MaxPool2d(3, 2),
    nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
    nn.MaxPool2d(2, dilation=2),
    nn.AvgPool1d(4, ceil_mode=True),
    nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
    nn.AdaptiveAvgPool2d((2, None)),
    nn.Flatten(),
    nn.Flatten(0),
    nn.Flatten(1, 2),
    nn.ReLU(),
    nn.BatchNorm2d(3),
    nn.Dropout(),
    FunctionalOp("flatten"),
    FunctionalOp("flatten", start_dim=0),
    FunctionalOp("reshape", shape=[-1, 12]),
    FunctionalOp("view", shape=[2, 3, 2, -1]),
    FunctionalOp("max_pool2d", kernel_size=2),
    FunctionalOp("avg_pool2d", kernel_size=3, stride=1, padding=1),
    FunctionalOp("adaptive_avg_pool2d", output_size=1),
    FunctionalOp("relu"),
]


def _shapes(module: nn.Module) -> list[list[int]]:
    """Inputs of 3 channels and sizes 1..13 in every spatial dim, batched and not."""
    spatial = 3 if isinstance(module, nn.Conv3d) else 1 if isinstance(module, (nn.Conv1d, nn.AvgPool1d)) else 2
    return [shape for s in range(1, 14) for shape in ([2, 3, *[s] * spatial], [3, *[s] * spatial])]


@pytest.mark.parametrize("module", MODULES, ids=[repr(m) for m in MODULES])
def test_each_rule_gives_torchs_shape_or_rejects_what_torch_rejects(module: nn.Module) -> None:
    rule = fit.rule_for(module.to("meta"))
    assert rule is not None
    for shape in _shapes(module):
        try:
            expected: list[int] | None = list(module(torch.empty(shape, device="meta")).shape)
        except (RuntimeError, ValueError):
            expected = None
        assert fit.reaching([rule], shape) == expected, shape


def test_a_linear_whose_in_features_may_be_inferred_is_unknown_off_its_own_size() -> None:
    rule = fit.rule_for(nn.Linear(6, 2))
    assert rule is not None and rule([4, 6]) == [4, 2]
    with pytest.raises(fit.Unknown):
        fit.reaching([rule], [4, 7])


def test_a_layer_without_a_rule_has_none() -> None:
    assert fit.rule_for(nn.LSTM(4, 4)) is None
    assert fit.rule_for(FunctionalOp("cat", dim=1)) is None
