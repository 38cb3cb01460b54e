"""Higher-order operators under the op counter and the hooks: run as torch runs them, counted where
they can be, and marked unknown (never 0, never a failure) where they cannot."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import layerscope
from layerscope.render.text import plain_text, to_json
from layerscope.render.views import inspect_view

from higher_order_models import Checkpointed, Cond, Flex, Loop


def _names(report: layerscope.api.Report) -> list[str]:
    return [layer.name for layer in report.layers]


@pytest.mark.parametrize(("sign", "taken"), [(1.0, ["", "a"]), (-1.0, ["", "b", "pad"])])
def test_cond_runs_the_branch_its_predicate_picks_and_counts_it(sign: float, taken: list[str]) -> None:
    # No plain forward to compare with: in torch 2.13, once torch.cond has run under any dispatch
    # mode (FlopCounterMode's too), later plain calls in the process fail in dynamo (a torch bug).
    model, x = Cond(), torch.full((2, 8), sign)
    report = layerscope.inspect(model, inputs=[x], device="cpu")
    assert report.failure is None and _names(report) == taken
    assert report.output_shapes == [[2, 8]]
    branch = 2 * 2 * 8 * 8 if sign > 0 else 2 * 2 * 8 * 4 + 2 * 2 * 4 * 8
    assert report.total_flops == branch and report.layers[0].flops == branch


def test_while_loop_runs_its_body_while_the_condition_holds() -> None:
    report = layerscope.inspect(Loop(), inputs=[torch.ones(2, 8)], device="cpu")
    assert report.failure is None
    assert _names(report) == ["", "fc", "fc", "fc"] and report.total_flops == 3 * 2 * 2 * 8 * 8


def test_activation_checkpointing_counts_as_a_plain_forward() -> None:
    model, x = Checkpointed(), torch.randn(3, 8)
    with FlopCounterMode(display=False) as reference, torch.no_grad():
        model(x)
    report = layerscope.inspect(model, inputs=[x], device="cpu")
    assert report.total_flops == reference.get_total_flops()
    assert _names(report) == ["", "fc", "head"]


@pytest.mark.parametrize(("model", "op"), [(Cond(), "cond"), (Loop(), "while_loop")])
def test_on_meta_a_data_dependent_operator_makes_the_flops_unknown_not_zero(model: nn.Module, op: str) -> None:
    report = layerscope.inspect(model, input_size=(2, 8), device="meta")
    assert report.failure is None and report.output_shapes == [[2, 8]]
    assert report.total_flops is None and report.layers[0].flops is None
    assert all(layer.flops is not None for layer in report.layers[1:])  # the layers inside are counted
    assert [note.message for note in report.notes] == [
        f"FLOPs not counted: {op} (its {'predicate' if op == 'cond' else 'condition'} has no value on meta)"
    ]
    data = json.loads(to_json(report))
    assert data["total_flops"] is None and data["total_macs"] is None and data["layers"][0]["flops"] is None
    table = plain_text(inspect_view(report))
    assert "FLOPs (forward)  unknown" in " ".join(table.split("  ")) or "unknown" in table
    root_row = next(line for line in table.splitlines() if line.startswith(f" {type(model).__name__} "))
    assert root_row.rstrip().endswith("?")


def test_flex_attention_runs_and_counts_as_its_two_matmuls() -> None:
    """Eager flex_attention compiles its operator internally, which fails under any dispatch mode; for the
    run it calls the operator directly (torch's own switch), restored afterwards."""
    import torch.nn.attention.flex_attention as flex

    before = flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG
    report = layerscope.inspect(Flex(), inputs=[torch.randn(1, 8, 16)], device="cpu")
    assert report.failure is None and report.output_shapes == [[1, 2, 8, 8]]
    linear, attention = 2 * 8 * 16 * 16, 2 * (2 * 1 * 2 * 8 * 8 * 8)  # q·kᵀ and weights·v
    assert report.total_flops == linear + attention and report.notes == []
    assert flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG is before
