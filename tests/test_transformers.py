"""Hugging Face models as users bring them (random init from small configs, nothing downloaded):
parameters, every layer's output shapes against a real CPU forward, FLOPs against torch's
FlopCounterMode on the same inputs (attention through the math backend, whose matmuls it counts), no false failure, the model untouched — on the default device."""

from __future__ import annotations

import pytest
import torch
from real_runs import real_run

import layerscope

from hf_models import MODELS
from test_untouched import state


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_transformers_model_is_reported_exactly_and_left_untouched(name: str) -> None:
    factory, make_inputs = MODELS[name]
    model, inputs = factory(), make_inputs()
    before = state(model)
    calls, flops = real_run(model, kwargs=inputs)

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
