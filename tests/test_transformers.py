"""Hugging Face models as users bring them (random init from small configs, nothing downloaded):
parameters, every layer's output shapes against a real CPU forward, FLOPs against torch's
FlopCounterMode on the same inputs (attention through the math backend, whose matmuls it counts), no false failure, the model untouched — on the default device."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import layerscope

from hf_models import MODELS
from test_untouched import state


def shapes(value: Any) -> list[list[int]]:
    if isinstance(value, torch.Tensor):
        return [list(value.shape)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in shapes(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in shapes(v)]
    return []


def real_run(model: nn.Module, inputs: dict[str, torch.Tensor]) -> tuple[list[tuple[str, list]], int]:
    """Each module call's (name, output shapes) in the order they finish, and the FLOPs, from a
    plain eval forward of a copy with hooks of our own."""
    twin = copy.deepcopy(model).eval()
    calls: list[tuple[str, list]] = []
    names = {id(m): n for n, m in twin.named_modules()}
    handles = [m.register_forward_hook(lambda m, a, o: calls.append((names[id(m)], shapes(o)))) for m in twin.modules()]
    counter = FlopCounterMode(display=False)
    # torch has no FLOP formula for the CPU's fused attention kernel (layerscope adds one): the
    # math backend computes the same attention as matmuls torch does count
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        twin(**inputs)
    for h in handles:
        h.remove()
    return calls, counter.get_total_flops()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_transformers_model_is_reported_exactly_and_left_untouched(name: str) -> None:
    factory, make_inputs = MODELS[name]
    model, inputs = factory(), make_inputs()
    before = state(model)
    calls, flops = real_run(model, inputs)

    report = layerscope.inspect(model, inputs=inputs)

    assert report.failure is None, report.failure
    assert report.total_params == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    finished = [(r.name, r.output_shapes) for r in report.layers if r.completed]
    assert sorted(finished) == sorted(calls)
    assert report.total_flops == flops
    assert state(model) == before


@pytest.mark.parametrize("name", ["bert", "t5", "llama"])
def test_made_inputs_are_in_range_for_text_models(name: str) -> None:
    factory, make_inputs = MODELS[name]
    sizes = {key: tuple(t.shape) for key, t in make_inputs().items()}
    report = layerscope.inspect(factory(), sizes, dtypes=[torch.long] * len(sizes))
    assert report.failure is None, report.failure
