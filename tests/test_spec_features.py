"""Spec features beyond a plain chain: graph wiring, several inputs, vars, several models per file."""

from __future__ import annotations

import json
from pathlib import Path

RESIDUAL = """name: Residual
input:
  - {name: x, shape: [2, 16]}
  - {name: bias, shape: [2, 16]}
layers:
  - {name: fc1, op: Linear, out_features: 16}
  - {op: relu}
  - {name: fc2, op: Linear, out_features: 16}
  - {name: skip, op: add, from: [fc2, x]}
  - {name: shifted, op: add, from: [skip, bias]}
  - {name: both, op: cat, from: [shifted, fc1], dim: 1}
  - {name: head, op: Linear, out_features: 4}
"""


def shapes(cli, tmp_path: Path, text: str, *args: str) -> tuple[int, dict]:
    (tmp_path / "model.yaml").write_text(text)
    run = cli("shapes", "model.yaml", "--format", "json", *args, cwd=tmp_path)
    return run.exit_code, json.loads(run.stdout)


def by_name(data: dict) -> dict[str, dict]:
    return {layer["name"]: layer for layer in data["layers"]}


def test_from_wires_residuals_merges_and_named_inputs(cli, tmp_path: Path) -> None:
    code, data = shapes(cli, tmp_path, RESIDUAL)
    layers = by_name(data)
    assert code == 0
    assert layers["skip"]["input_shapes"] == [[2, 16], [2, 16]]
    assert layers["both"]["output_shapes"] == [[2, 32]]
    assert layers["head"]["num_params"] == 32 * 4 + 4  # in_features inferred after the cat
    assert data["output_shapes"] == [[2, 4]]


def test_repeated_input_flags_feed_several_inputs(cli, tmp_path: Path) -> None:
    code, data = shapes(cli, tmp_path, RESIDUAL, "--input", "5x16", "--input", "5x16")
    assert code == 0 and data["output_shapes"] == [[5, 4]]


def test_merge_of_different_shapes_fails_at_the_merge(cli, tmp_path: Path) -> None:
    text = "input: {shape: [2, 16]}\nlayers:\n  - {name: fc1, op: Linear, out_features: 8}\n  - {name: skip, op: add, from: [fc1, input]}\n"
    code, data = shapes(cli, tmp_path, text)
    assert code == 1
    assert data["failure"]["layer"] == "skip"
    assert data["failure"]["got"] == [[2, 8], [2, 16]]
    assert data["failure"]["source"] == "model.yaml:4:5"


def test_nested_sequential_takes_from_its_own_input(cli, tmp_path: Path) -> None:
    text = """input: {shape: [1, 8]}
layers:
  - name: block
    op: Sequential
    layers:
      - {name: fc, op: Linear, out_features: 8}
      - {name: res, op: add, from: [fc, input]}
  - {name: out, op: Linear, out_features: 2}
"""
    code, data = shapes(cli, tmp_path, text)
    assert code == 0
    assert by_name(data)["block.res"]["input_shapes"] == [[1, 8], [1, 8]]


def test_vars_may_use_other_vars(cli, tmp_path: Path) -> None:
    text = """vars: {width: 4, hidden: '${width * 2 ** 3}', out: '${max(hidden // 8, 3)}'}
input: {shape: [1, '${width}']}
layers:
  - {name: fc, op: Linear, out_features: '${hidden}'}
  - {name: head, op: Linear, out_features: '${out}'}
"""
    code, data = shapes(cli, tmp_path, text)
    assert code == 0
    assert by_name(data)["fc"]["output_shapes"] == [[1, 32]]
    assert data["output_shapes"] == [[1, 4]]


def test_several_models_per_file(cli, tmp_path: Path) -> None:
    text = "name: Small\ninput: {shape: [1, 3]}\nlayers: [{op: Linear, out_features: 2}]\n---\nname: Big\ninput: {shape: [1, 3]}\nlayers: [{op: Linear, out_features: 20}]\n"
    code, data = shapes(cli, tmp_path, text, "--model", "Big")
    assert code == 0 and data["model"] == "Big" and data["output_shapes"] == [[1, 20]]


def test_module_argument_builds_a_module(cli, tmp_path: Path) -> None:
    text = """input: {shape: [2, 5, 16]}
layers:
  - name: enc
    op: TransformerEncoder
    num_layers: 2
    encoder_layer: {op: TransformerEncoderLayer, d_model: 16, nhead: 2, dim_feedforward: 32, batch_first: true}
"""
    code, data = shapes(cli, tmp_path, text)
    layers = by_name(data)
    assert code == 0
    assert layers["enc.layers.1.linear1"]["output_shapes"] == [[2, 5, 32]]  # batch_first: the fast path stays off
