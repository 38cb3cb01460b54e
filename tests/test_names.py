"""Torch's names: a state_dict saved from the same model written in Python loads into the spec's model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import layerscope
from layerscope.builder.builder import build
from layerscope.builder.to_python import to_python

from conftest import ROOT
from reference_models import REFERENCES

SEQUENTIAL = """name: Seq
input: {shape: [2, 20]}
layers:
  - {op: LazyLinear, out_features: 256}
  - {op: ReLU}
  - {op: LazyLinear, out_features: 10}
"""

# reference_models.tied_mlp: nn.Sequential(LazyLinear(8), ReLU, shared, ReLU, shared, ReLU, LazyLinear(1))
TIED_SEQUENTIAL = """name: TiedSeq
input: {shape: [2, 4]}
layers:
  - {op: LazyLinear, out_features: 8}
  - {op: ReLU}
  - {op: LazyLinear, out_features: 8}
  - {op: ReLU}
  - {use: 2}
  - {op: ReLU}
  - {op: LazyLinear, out_features: 1}
"""

# one ReLU module called twice, as torchvision's BasicBlock calls self.relu
CALLED_TWICE = """name: Twice
input: {shape: [2, 4]}
layers:
  - {name: fc1, op: Linear, out_features: 4}
  - {name: relu, op: ReLU}
  - {name: fc2, op: Linear, out_features: 4}
  - {use: relu}
  - {name: fc3, op: Linear, out_features: 4}
  - {use: fc2}
"""


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(4, 4)
        self.fc3 = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc3(self.relu(self.fc2(self.relu(self.fc1(x))))))


def spec_model(tmp_path: Path, text: str) -> nn.Module:
    path = tmp_path / "model.yaml"
    path.write_text(text, encoding="utf-8")
    return layerscope.build(path)


def materialised(model: nn.Module, inputs: list[torch.Tensor]) -> nn.Module:
    """A reference with its lazy layers made, by one forward."""
    with torch.no_grad():
        model(*inputs)
    return model


def loads_strictly(python: nn.Module, spec: nn.Module) -> None:
    saved = python.state_dict()
    spec.load_state_dict(saved, strict=True)
    assert list(spec.state_dict()) == list(saved)


def test_unnamed_layers_of_a_list_that_names_none_are_numbered_like_nn_sequential(tmp_path: Path) -> None:
    reference, inputs = REFERENCES["lazy_mlp"]
    model = spec_model(tmp_path, SEQUENTIAL)
    assert [n for n, _ in model.named_children()] == ["0", "1", "2"]
    loads_strictly(materialised(reference(), inputs()), model)


def test_a_nested_sequentials_unnamed_children_are_numbered(tmp_path: Path) -> None:
    reference, inputs = REFERENCES["nest_mlp"]
    model = layerscope.build(ROOT / "configs" / "nest_mlp.yaml")
    assert [n for n, _ in model.net.named_children()] == ["0", "1", "2", "3"]
    loads_strictly(materialised(reference(), inputs()), model)


def test_a_use_in_a_sequential_is_registered_under_its_position_as_torch_does(tmp_path: Path) -> None:
    reference, inputs = REFERENCES["tied_mlp"]
    model = spec_model(tmp_path, TIED_SEQUENTIAL)
    assert model.get_submodule("4") is model.get_submodule("2")
    loads_strictly(materialised(reference(), inputs()), model)
    assert sum(p.numel() for p in model.parameters()) == 121


def test_a_use_without_a_name_calls_the_module_again_under_its_one_name(tmp_path: Path) -> None:
    model = spec_model(tmp_path, CALLED_TWICE)
    assert [n for n, _ in model.named_modules(remove_duplicate=False)] == ["", "fc1", "relu", "fc2", "fc3"]
    python = Twice()
    loads_strictly(python, model)
    x = torch.rand(2, 4)
    with torch.no_grad():
        assert torch.equal(model(x), python(x))


def test_the_second_call_keeps_its_rows_in_the_tables(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text(CALLED_TWICE, encoding="utf-8")
    report = layerscope.inspect(tmp_path / "model.yaml")
    rows = [(r.name, r.shared_with) for r in report.layers if r.depth == 1]
    assert rows == [("fc1", None), ("relu", None), ("fc2", None), ("relu", "relu"), ("fc3", None), ("fc2", "fc2")]
    assert report.total_params == 3 * 20


def test_a_use_with_a_name_keeps_the_second_name(tmp_path: Path) -> None:
    model = layerscope.build(ROOT / "configs" / "tied_mlp.yaml")
    assert model.shared_again is model.shared
    assert "shared_again.weight" in model.state_dict()


def test_numbers_written_as_names_and_in_use_and_from(tmp_path: Path) -> None:
    text = """input: {shape: [2, 4]}
layers:
  - {name: 0, op: Linear, out_features: 4}
  - {name: 1, op: ReLU}
  - {use: 0}
  - {name: head, op: Linear, out_features: 2, from: 0}
"""
    model = spec_model(tmp_path, text)
    assert [n for n, _ in model.named_children()] == ["0", "1", "head"]
    assert sorted(model.state_dict()) == ["0.bias", "0.weight", "head.bias", "head.weight"]


def test_a_switched_off_layer_takes_no_position(tmp_path: Path) -> None:
    text = """input: {shape: [2, 4]}
layers:
  - {op: Linear, out_features: 4}
  - {op: Dropout, when: false}
  - {op: Linear, out_features: 2}
"""
    assert [n for n, _ in spec_model(tmp_path, text).named_children()] == ["0", "1"]


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            "  - name: seq\n    layers:\n      - {op: Linear, out_features: 4}\n      - {name: 0, op: ReLU}\n",
            "model.yaml:5:9: error: this unnamed layer is named '0' by its position, but the layer at line 6 is called that",
        ),
        (
            "  - {op: Linear, out_features: 4}\n  - {op: add, from: [linear, input]}\n",
            "model.yaml:4:21: error: from: refers to unknown layer 'linear' — unnamed layers here are named by position",
        ),
        ("  - {name: -1, op: ReLU}\n", "model.yaml:3:12: error: layer name -1 must be letters, digits or _"),
        ("  - {name: true, op: ReLU}\n", "model.yaml:3:12: error: layer name True must be letters, digits or _"),
        (
            "  - {name: 0, op: ReLU}\n  - {name: x, op: ReLU}\n  - {name: '0', op: ReLU}\n",
            "model.yaml:5:12: error: duplicate layer name '0' (first at line 3)",
        ),
    ],
)
def test_numeric_names_that_collide_or_are_not_names_are_refused(
    cli, tmp_path: Path, layers: str, message: str
) -> None:
    (tmp_path / "model.yaml").write_text(f"input: {{shape: [2, 4]}}\nlayers:\n{layers}", encoding="utf-8")
    run = cli("shapes", "model.yaml", cwd=tmp_path)
    assert run.exit_code == 2
    assert run.stderr.startswith(message), run.stderr
    assert "Traceback" not in run.stderr


def exported_model(path: Path) -> tuple[nn.Module, Any]:
    spec = layerscope.load(path)
    namespace: dict[str, Any] = {}
    exec(compile(to_python(spec, build(spec, device="meta"), path.name), "exported.py", "exec"), namespace)  # noqa: S102 - our own output
    return namespace["make_model"](), namespace["example_inputs"]


@pytest.mark.parametrize("text", [CALLED_TWICE, TIED_SEQUENTIAL])
def test_an_exported_spec_with_calls_again_computes_the_same(tmp_path: Path, text: str) -> None:
    torch.manual_seed(0)
    ours = spec_model(tmp_path, text).eval()
    theirs, example_inputs = exported_model(tmp_path / "model.yaml")
    theirs.load_state_dict(ours.state_dict(), strict=True)
    inputs = example_inputs()
    with torch.no_grad():
        assert torch.equal(ours(*inputs), theirs.eval()(*inputs))


def test_a_second_call_that_fails_is_placed_at_its_use(cli, tmp_path: Path) -> None:
    text = """input: {shape: [2, 4]}
layers:
  - {name: fc, op: Linear, out_features: 4}
  - {name: wide, op: Linear, out_features: 6}
  - {use: fc}
"""
    (tmp_path / "model.yaml").write_text(text, encoding="utf-8")
    run = cli("shapes", "model.yaml", "--format", "json", cwd=tmp_path)
    data = json.loads(run.stdout)
    assert run.exit_code == 1
    assert (data["failure"]["layer"], data["failure"]["source"]) == ("fc", "model.yaml:5:5")
    assert [(r["name"], r["source"]) for r in data["layers"][1:3]] == [
        ("fc", "model.yaml:3:5"),
        ("wide", "model.yaml:4:5"),
    ]


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("010", "YAML reads 010 as 8 (an octal number) — write 8, or quote '010' for text"),
        ("1:30", "YAML reads 1:30 as 90 (a base-60 number) — write 90, or quote '1:30' for text"),
    ],
)
def test_yaml_11_numbers_that_read_as_other_digits_are_refused(cli, tmp_path: Path, written: str, message: str) -> None:
    """A numeric name must be the digits a checkpoint's key has: YAML 1.1 reads 010 as 8."""
    spec = tmp_path / "n.yaml"
    spec.write_text(
        f"name: N\ninput: {{shape: [1, 4]}}\nlayers:\n  - {{name: {written}, op: Linear, out_features: 2}}\n",
        encoding="utf-8",
    )
    run = cli("params", str(spec))
    assert (run.exit_code, run.stderr) == (2, f"{spec}:4:12: error: {message}\n")
