"""The spec language's matmul, reductions and constants: built, checked at the spec stage, and exported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from layerscope.builder.builder import build
from layerscope.builder.to_python import to_python
from layerscope.spec.model import load_spec


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def inspect_json(cli, path: Path) -> dict[str, Any]:
    run = cli("inspect", str(path), "--format", "json")
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def exported_model(path: Path) -> torch.nn.Module:
    spec = load_spec(path)
    namespace: dict[str, Any] = {}
    exec(compile(to_python(spec, build(spec, device="meta"), path.name), "exported.py", "exec"), namespace)  # noqa: S102 - our own output
    return namespace["make_model"]()


REDUCTIONS = """
input: [{name: a, shape: [2, 3, 4]}, {name: b, shape: [4, 5]}]
layers:
  - {name: prod, op: matmul, from: [a, b]}
  - {name: shifted, op: add, constant: 1}
  - {name: scaled, op: mul, constant: 0.5}
  - {name: total, op: sum, dim: [1, 2], keepdim: true, from: scaled}
  - {name: peak, op: amax, dim: -1, from: scaled}
  - {name: avg, op: mean, from: scaled}
  - {name: everything, op: sum, from: scaled}
"""


def test_matmul_reductions_and_constants_give_torchs_shapes(cli, tmp_path: Path) -> None:
    data = inspect_json(cli, write(tmp_path, REDUCTIONS))
    shapes = {r["name"]: r["output_shapes"][0] for r in data["layers"]}
    assert shapes["prod"] == [2, 3, 5]  # (2, 3, 4) @ (4, 5) broadcasts like torch.matmul
    assert (shapes["total"], shapes["peak"], shapes["avg"], shapes["everything"]) == ([2, 1, 1], [2, 3], [], [])
    prod = next(r for r in data["layers"] if r["name"] == "prod")
    assert prod["flops"] == 2 * 2 * 3 * 4 * 5  # counted as a matmul


def test_the_ops_compute_what_torch_does(tmp_path: Path) -> None:
    path = write(tmp_path, REDUCTIONS)
    model = build(load_spec(path), device="cpu").model
    a, b = torch.randn(2, 3, 4), torch.randn(4, 5)
    scaled = (a @ b + 1) * 0.5
    with torch.no_grad():
        assert torch.equal(model.total(scaled), scaled.sum(dim=(1, 2), keepdim=True))
        assert torch.equal(model.peak(scaled), scaled.amax(dim=-1))
        assert torch.allclose(model(a, b), scaled.sum())
        assert torch.allclose(exported_model(path)(a, b), scaled.sum())


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("{op: matmul}", "matmul multiplies two or more tensors: name them in from:"),
        ("{op: matmul, from: input}", "matmul multiplies two or more tensors: name them in from:"),
        ("{op: sum, dim: one}", "sum dim: 'one' is text, but it takes int"),
        ("{op: add, constant: two}", "add constant: 'two' is text, but it takes float"),
    ],
)
def test_misused_ops_are_spec_errors(cli, tmp_path: Path, layer: str, message: str) -> None:
    path = write(tmp_path, f"input: {{shape: [2, 3]}}\nlayers:\n  - {layer}\n")
    run = cli("inspect", str(path))
    assert run.exit_code == 2
    assert run.stderr.startswith(f"{path}:3:") and message in run.stderr


@pytest.mark.parametrize(
    ("op", "first_guess"),
    [("mm", "matmul"), ("einsum", "matmul"), ("dense", "Linear"), ("fc", "Linear"), ("bn", "BatchNorm2d"),
     ("concatenate", "cat"), ("layer_norm", "LayerNorm"), ("avgpool", "avg_pool2d"), ("Conv2D", "Conv2d")],
)  # fmt: skip
def test_unknown_ops_are_suggested_by_meaning_then_spelling(cli, tmp_path: Path, op: str, first_guess: str) -> None:
    path = write(tmp_path, f"input: {{shape: [2, 3]}}\nlayers:\n  - {{op: {op}}}\n")
    run = cli("inspect", str(path))
    assert run.exit_code == 2
    assert f"error: unknown op {op!r} — did you mean {first_guess!r}" in run.stderr
    assert run.stderr.endswith('functional ops (docs/spec.md, "Functional ops")\n')


def test_the_unknown_op_hint_names_the_files_blocks_and_dangles_nothing(cli, tmp_path: Path) -> None:
    path = write(
        tmp_path, "input: {shape: [2, 3]}\nblocks:\n  Head: {layers: [{op: relu}]}\nlayers:\n  - {op: Frobnicate}\n"
    )
    run = cli("inspect", str(path))
    assert run.exit_code == 2
    assert run.stderr == (
        f"{path}:5:10: error: unknown op 'Frobnicate' — ops are torch.nn class names, functional ops "
        '(docs/spec.md, "Functional ops") or this file\'s blocks: Head\n'
    )


def test_softmax_dim_as_text_is_refused_before_anything_runs(cli, tmp_path: Path) -> None:
    path = write(tmp_path, "input: {shape: [2, 3]}\nlayers:\n  - {op: softmax, dim: one}\n")
    run = cli("shapes", str(path))
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr == f"{path}:3:24: error: softmax dim: 'one' is text, but it takes int\n"


def test_a_matmul_that_does_not_fit_is_explained_in_its_own_terms(cli, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "input: {shape: [2, 20]}\nlayers:\n  - {name: w, param: {shape: [30, 20]}}\n"
        "  - {name: mm, op: matmul, from: [input, w]}\n",
    )
    data = json.loads(cli("shapes", str(path), "--format", "json").stdout)
    failure = data["failure"]
    assert (failure["layer"], failure["type"], failure["got"]) == ("mm", "matmul", [[2, 20], [30, 20]])
    assert failure["message"] == (
        "matmul: 2x20 @ 30x20: the last dim of the first (20) must equal the second's second-to-last dim (30)"
    )
    assert cli("shapes", str(path)).exit_code == 1  # the model rejecting its input is a result, not a spec error


def test_a_list_where_one_number_is_due_is_a_spec_error(cli, tmp_path: Path) -> None:
    # LazyLinear(out_features=[]) used to reach torch and end as an internal error (found by tests/fuzz.py)
    path = write(tmp_path, "input: {shape: [2, 4]}\nlayers:\n  - {op: LazyLinear, out_features: []}\n")
    run = cli("inspect", str(path))
    assert (run.exit_code, run.stderr) == (
        2,
        f"{path}:3:36: error: LazyLinear out_features: [] is a list, but it takes int\n",
    )
    fine = write(
        tmp_path, "input: {shape: [1, 2, 8, 8]}\nlayers:\n  - {op: Conv2d, out_channels: 2, kernel_size: [3, 1]}\n"
    )
    assert cli("inspect", str(fine)).exit_code == 0  # kernel_size takes an int or a tuple
