"""The spec language beyond a chain: blocks with params, repeat, when, use, tie, --set, --dtype."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from layerscope.builder.builder import build
from layerscope.spec.model import load_spec

from conftest import ROOT

TINY = ROOT / "tests" / "specs" / "tiny_blocks.yaml"


def run_json(cli, *args: str) -> dict:
    run = cli(*args, "--format", "json")
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def rows(data: dict) -> dict[str, dict]:
    return {layer["name"]: layer for layer in data["layers"]}


def test_blocks_expand_with_their_params_under_the_callers_name(cli) -> None:
    layers = rows(run_json(cli, "inspect", str(TINY)))
    assert layers["blocks.0"]["type"] == "Residual"  # a block's row is named by the block
    assert layers["blocks"]["type"] == "Sequential"  # repeat: stacks them like nn.Sequential
    assert [n for n in layers if n.startswith("blocks.0.")] == [
        "blocks.0.norm", "blocks.0.fc1", "blocks.0.act", "blocks.0.fc2", "blocks.0.proj", "blocks.0.sum",
    ]  # fmt: skip
    assert layers["blocks.0.fc1"]["num_params"] == 16 * 32 + 32  # out_features: ${2 * c} with c = width
    # a block row sums its children; the first repeat has the projection (project: ${i == 0})
    assert layers["blocks.0"]["num_params"] == 32 + 544 + 528 + 272
    assert layers["blocks.1"]["num_params"] == 32 + 544 + 528


def test_a_layer_switched_off_by_when_passes_its_input_on(cli) -> None:
    layers = rows(run_json(cli, "shapes", str(TINY)))
    assert "blocks.1.proj" not in layers
    # blocks.1.sum adds fc2 to what proj would have read: the block's input
    assert layers["blocks.1.sum"]["input_shapes"] == [[2, 7, 16], [2, 7, 16]]
    built = build(load_spec(TINY))
    with torch.no_grad():
        for param in built.model.parameters():  # the builder leaves storage uninitialised
            param.normal_(generator=torch.Generator().manual_seed(0))
        x = built.model.embed(built.inputs[0])
        block = built.model.blocks.get_submodule("1")
        expected = block.fc2(block.act(block.fc1(block.norm(x)))) + x
        assert torch.equal(block(x), expected)


def test_use_of_a_repeated_stack_shares_every_weight(cli) -> None:
    data = run_json(cli, "params", str(TINY))
    params = {p["name"]: p for p in data["params"]}
    assert params["again.0.fc1.weight"]["shared_with"] == ["blocks.0.fc1.weight"]
    assert data["total_params"] == 800 + 3584 + 255  # `again` and the tied head add nothing


def test_tie_makes_one_tensor_counted_once() -> None:
    built = build(load_spec(TINY))
    assert built.model.head.weight is built.model.embed.weight
    params = {n: p for n, p in built.model.named_parameters(remove_duplicate=False)}
    assert params["head.weight"] is params["embed.weight"]


def test_set_overrides_vars_and_everything_that_depends_on_them(cli) -> None:
    data = run_json(cli, "inspect", str(TINY), "--set", "depth=1", "--set", "classes=1")
    layers = rows(data)
    assert "blocks.1" not in layers and "blocks.0" in layers
    assert layers["classes"]["output_shapes"] == [[2, 2]]  # ${classes if classes > 1 else 2}
    assert data["total_params"] == 800 + 1376 + 50 * 2 + 2


def test_set_reads_numbers_and_booleans(cli, tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "vars: {w: 4, scale: 1.5, bias: true}\ninput: {shape: [1, 3]}\n"
        'layers:\n  - {op: Linear, out_features: "${w}", bias: "${bias}"}\n  - {op: Dropout, p: "${scale / 3}"}\n'
    )
    data = run_json(cli, "inspect", str(spec), "--set", "bias=false", "--set", "w=8", "--set", "scale=0.3")
    assert data["total_params"] == 3 * 8


def test_dtype_changes_parameters_inputs_and_the_memory_estimate(cli) -> None:
    f32 = run_json(cli, "inspect", "resnet18")
    bf16 = run_json(cli, "inspect", "resnet18", "--dtype", "bfloat16")
    assert f32["total_params"] == bf16["total_params"] == 11_689_512
    assert bf16["param_bytes"] * 2 == f32["param_bytes"] == 11_689_512 * 4
    assert bf16["input_bytes"] * 2 == f32["input_bytes"] == 3 * 224 * 224 * 4
    assert bf16["activation_bytes"] * 2 == f32["activation_bytes"]
    assert {p["dtype"] for p in bf16["params"]} == {"bfloat16"}
    assert bf16["total_flops"] == f32["total_flops"]


def test_token_ids_keep_their_dtype_under_dtype(cli) -> None:
    data = run_json(cli, "inspect", str(TINY), "--dtype", "float16")
    assert data["input_bytes"] == 2 * 7 * 8  # int64 ids, not float16
    assert data["param_bytes"] == 4_639 * 2


def test_memory_estimate_adds_up(cli) -> None:
    data = run_json(cli, "inspect", "lenet")
    assert data["input_bytes"] == 32 * 32 * 4
    assert data["param_bytes"] == 81_290 * 4
    layers = [layer for layer in data["layers"] if layer["is_leaf"] and not layer["functional"]]
    assert data["activation_bytes"] == sum(layer["output_bytes"] for layer in layers)
    assert data["activation_bytes"] == 4 * (6 * 28 * 28 + 16 * 12 * 12 + 120 + 84 + 10)  # conv1, conv2, fc1-3
    assert data["total_bytes"] == data["input_bytes"] + data["param_bytes"] + data["activation_bytes"]


def test_depth_collapses_blocks_into_one_row_each(cli) -> None:
    run = cli("inspect", "resnet18", "--depth", "1")
    lines = [line.split()[0] for line in run.stdout.splitlines()[4:17] if line.strip()]
    assert lines == ["ResNet18", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "flatten", "fc"]  # fmt: skip
    assert " layer4     Sequential          1x512x7x7       8,393,728" in run.stdout


def _with_positions(value: object) -> object:
    """A YAML value with every position it remembers, for comparing two loaders."""
    from layerscope.spec.source import YList, YMap

    if isinstance(value, YMap):
        return (
            value.source,
            {k: (_with_positions(v), value.key_sources[k], value.value_sources[k]) for k, v in value.items()},
        )
    if isinstance(value, YList):
        return (value.source, value.item_sources, [_with_positions(v) for v in value])
    return value


@pytest.mark.parametrize(
    "path",
    sorted([*(ROOT / "configs").glob("*.yaml"), *(ROOT / "tests" / "specs").glob("*.yaml")]),
    ids=lambda p: p.name,
)
def test_libyaml_reads_every_spec_as_the_python_parser_does(path: Path) -> None:
    from layerscope.spec import source as yamlsrc

    text = path.read_text()
    fast = yamlsrc._documents(yamlsrc._FastLoader, text, path.name)
    slow = yamlsrc._documents(yamlsrc._Loader, text, path.name)
    assert yamlsrc._FastLoader is not yamlsrc._Loader  # libyaml is there, so the fast path is tested
    assert [_with_positions(d) for d in fast] == [_with_positions(d) for d in slow]
