"""Free tensors, `param:` and `buffer:`: counted as torch counts them, reproducible, budgeted, exported.

D2L's FixedHiddenMLP and chimera are bundled specs (configs/); here they are held to the book's
Python model run on a real 2x20 input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import layerscope
from layerscope.builder.builder import build
from layerscope.builder.to_python import to_python
from layerscope.spec.model import load_spec

from conftest import ROOT
from reference_models import REFERENCES

TENSORS = """
input: {shape: [2, 4]}
layers:
  - {name: fixed, buffer: {shape: [4, 4], init: uniform, persistent: false}}
  - {name: stats, buffer: {shape: [4], init: ones}}
  - {name: scale, param: {shape: [4], init: normal, seed: 7}}
  - {name: frozen, param: {shape: [2, 2], init: zeros, requires_grad: false}}
  - {name: fc, op: Linear, out_features: 4, from: input}
  - {name: mixed, op: matmul, from: [fc, fixed]}
  - {name: scaled, op: mul, from: [mixed, scale, stats]}
"""


def write(tmp_path: Path, text: str = TENSORS) -> Path:
    path = tmp_path / "tensors.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def exported_namespace(path: Path) -> dict[str, Any]:
    spec = load_spec(path)
    namespace: dict[str, Any] = {}
    exec(compile(to_python(spec, build(spec, device="meta"), path.name), "exported.py", "exec"), namespace)  # noqa: S102 - our own output
    return namespace


def test_params_count_buffers_do_not_and_torch_registers_them_as_written(tmp_path: Path) -> None:
    model = layerscope.build(write(tmp_path))
    params = dict(model.named_parameters())
    assert (params["scale"].requires_grad, params["frozen"].requires_grad) == (True, False)
    assert set(dict(model.named_buffers())) == {"fixed", "stats"}
    assert set(model.state_dict()) == {"stats", "scale", "frozen", "fc.weight", "fc.bias"}  # fixed: not persistent
    report = layerscope.inspect(write(tmp_path))
    assert report.total_params == 4 + 4 + 20
    assert report.trainable_params == 4 + 20  # frozen is counted, not trainable
    assert report.output_shapes == [[2, 4]]


def test_values_are_the_seeds_and_leave_the_global_rng_alone(tmp_path: Path) -> None:
    state = torch.random.get_rng_state()
    first, second = layerscope.build(write(tmp_path)), layerscope.build(write(tmp_path))
    assert torch.equal(first.fixed, torch.rand((4, 4), generator=torch.Generator().manual_seed(0)))
    assert torch.equal(first.scale, torch.randn((4,), generator=torch.Generator().manual_seed(7)))
    assert torch.equal(first.stats, torch.ones(4)) and torch.equal(first.frozen, torch.zeros(2, 2))
    assert torch.equal(first.fixed, second.fixed) and torch.equal(first.scale, second.scale)
    assert not torch.equal(state, torch.random.get_rng_state())  # fc's weights are torch.nn's draws
    state = torch.random.get_rng_state()
    built = build(load_spec(write(tmp_path)), device="cpu")  # for the tables: the same values, no draws
    assert torch.equal(built.model.fixed, first.fixed) and torch.equal(built.model.scale, first.scale)
    assert torch.equal(state, torch.random.get_rng_state())


def test_the_exported_file_registers_and_fills_them_the_same_way(tmp_path: Path) -> None:
    path = write(tmp_path)
    ours = layerscope.build(path).eval()
    theirs = exported_namespace(path)["make_model"]().eval()
    assert [(n, p.requires_grad) for n, p in theirs.named_parameters()] == [
        (n, p.requires_grad) for n, p in ours.named_parameters()
    ]
    assert list(theirs.state_dict()) == list(ours.state_dict())
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4)
    with torch.no_grad():
        assert torch.equal(theirs.fixed, ours.fixed)  # not in the state_dict: made alike
        assert torch.allclose(theirs(x), ours(x))


def test_a_huge_tensor_is_built_on_meta_or_refused_before_it_is_allocated(cli, tmp_path: Path) -> None:
    path = write(tmp_path, "input: {shape: [2, 3]}\nlayers:\n  - {name: huge, param: {shape: [1000000, 1000000]}}\n")
    run = cli("inspect", str(path), "--format", "json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    assert (data["total_params"], data["device"]) == (10**12, "meta")
    refused = cli("inspect", str(path), "--device", "cpu")
    assert refused.exit_code == 2
    assert refused.stderr.startswith("layerscope: error: the model's tensors on the CPU would pass 8 GiB")


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("{name: w, param: {shape: [3, 3], init: normall}}", "param init must be one of zeros, ones, uniform, normal, got 'normall' — did you mean 'normal'?"),
        ("{name: w, buffer: {shape: [3, 3]}, from: input}", "a buffer: layer reads no input, so it takes no from:"),
        ("{name: w, buffer: {shape: [3, 0]}}", "buffer shape: sizes must be positive, got [3, 0]"),
        ("{name: w, param: {shape: [3, x]}}", "param shape: must be a list of sizes"),
        ("{name: w, param: {init: ones}}", "param: needs a shape:"),
        ("{name: w, buffer: {shape: [3], requires_grad: false}}", "unknown buffer key 'requires_grad'"),
        ("{name: w, param: {shape: [3], seed: -1}}", "seed: must be a whole number from 0, got -1"),
        ("{name: w, param: {shape: [3]}, buffer: {shape: [3]}}", "a layer holds a param: or a buffer:, not both"),
        ("{name: w, op: Linear, param: {shape: [3]}}", "unknown param layer key 'op'"),
        ("{name: w, param: {shape: [4294967296, 4294967296]}}", "has more elements than a tensor can hold"),
    ],
)  # fmt: skip
def test_a_malformed_tensor_is_one_positioned_error(cli, tmp_path: Path, layer: str, message: str) -> None:
    path = write(tmp_path, f"input: {{shape: [2, 3]}}\nlayers:\n  - {layer}\n")
    run = cli("inspect", str(path))
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith(f"{path}:3:") and message in run.stderr, run.stderr


@pytest.mark.parametrize(("config", "total"), [("fixed_hidden_mlp", 420), ("chimera", 3952 + 340 + 420)])
def test_d2l_models_have_the_books_counts_and_constant(config: str, total: int) -> None:
    factory, make_inputs = REFERENCES[config]
    twin = factory()
    twin(*make_inputs())  # a real 2x20 input: the lazy layers take their sizes
    report = layerscope.inspect(ROOT / "configs" / f"{config}.yaml")
    assert report.total_params == report.trainable_params == total == sum(p.numel() for p in twin.parameters())
    assert report.output_shapes == [[]]  # X.sum()
    model = layerscope.build(ROOT / "configs" / f"{config}.yaml")
    constant = model.get_buffer("rand_weight" if config == "fixed_hidden_mlp" else "2.rand_weight")
    assert constant.shape == (20, 20) and not constant.requires_grad
    # the book's constant is a plain attribute, ours a non-persistent buffer: in neither state_dict
    assert not any(k.endswith("rand_weight") for k in [*model.state_dict(), *twin.state_dict()])
    assert set(twin.state_dict()) <= set(model.state_dict())  # plus the second name of the reused layer


def test_fixed_hidden_mlp_computes_the_books_forward_up_to_its_loop() -> None:
    """With the book's weights and constant, the spec gives the book's result before the value-dependent
    `while X.abs().sum() > 1: X /= 2`, which the spec leaves out (its comment says so)."""
    factory, make_inputs = REFERENCES["fixed_hidden_mlp"]
    twin = factory()
    x = make_inputs()[0]
    twin(x)
    model = layerscope.build(ROOT / "configs" / "fixed_hidden_mlp.yaml")
    with torch.no_grad():
        model.linear.load_state_dict(twin.linear.state_dict())
        model.rand_weight.copy_(twin.rand_weight)
        seen: list[torch.Tensor] = []
        model.linear.register_forward_hook(
            lambda module, args, out: seen.append(out)
        )  # called twice: the last is the second call
        result = model(x)
        before_sum = seen[-1]
        assert torch.allclose(result, before_sum.sum())
        while before_sum.abs().sum() > 1:  # the book's loop, which the spec leaves out
            before_sum /= 2
        assert torch.allclose(before_sum.sum(), twin(x))


def test_buffers_are_listed_marked_and_in_memory_but_in_no_parameter_total(cli) -> None:
    run = cli("params", "configs/bn_convnet.yaml", "--format", "json")
    assert run.exit_code == 0, run.stderr
    data = json.loads(run.stdout)
    buffers = {b["name"]: b for b in data["buffers"]}
    assert list(buffers) == [
        f"bn{i}.{n}" for i in (1, 2) for n in ("running_mean", "running_var", "num_batches_tracked")
    ]
    assert buffers["bn2.running_var"]["shape"] == [32] and buffers["bn2.running_var"]["buffer"] is True
    assert (buffers["bn1.num_batches_tracked"]["dtype"], buffers["bn1.num_batches_tracked"]["trainable"]) == (
        "int64",
        False,
    )
    assert not any(p["buffer"] for p in data["params"])
    assert data["total_params"] == 25_674  # parameters only, as before
    assert data["buffer_bytes"] == (16 + 16 + 32 + 32) * 4 + 2 * 8
    assert (
        data["total_bytes"]
        == data["input_bytes"] + data["param_bytes"] + data["buffer_bytes"] + data["activation_bytes"]
    )
    table = cli("params", "configs/bn_convnet.yaml").stdout
    assert " bn1.running_mean          16              16   float32   no (buffer)   -\n" in table
    assert "Buffers (not params)  98 (400 B)" in table
    assert "  Buffers                   400 B" in cli("inspect", "configs/bn_convnet.yaml").stdout


def test_a_python_models_buffers_are_listed_too() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    model.register_buffer("mask", torch.ones(4, dtype=torch.bool), persistent=False)
    report = layerscope.inspect(model, (2, 4))
    assert [(b.name, b.dtype) for b in report.buffers] == [
        ("mask", "bool"), ("1.running_mean", "float32"), ("1.running_var", "float32"), ("1.num_batches_tracked", "int64"),
    ]  # fmt: skip
    assert report.total_params == 20 + 8 and report.buffer_bytes == 4 + 16 + 16 + 8


def test_a_param_layer_can_be_tied_to_but_not_called(cli, tmp_path: Path) -> None:
    tied = write(
        tmp_path,
        "input: {shape: [2, 4]}\nlayers:\n  - {name: w, param: {shape: [4, 4], init: normal}}\n"
        "  - {name: fc, op: Linear, in_features: 4, out_features: 4, tie: {weight: w}}\n",
    )
    model = layerscope.build(tied)
    assert model.fc.weight is model.w
    assert layerscope.inspect(tied).total_params == 16 + 4
    assert exported_namespace(tied)["make_model"]().fc.weight.shape == (4, 4)
    called = write(tmp_path, "input: {shape: [2, 4]}\nlayers:\n  - {name: w, param: {shape: [4, 4]}}\n  - {use: w}\n")
    run = cli("inspect", str(called))
    assert run.exit_code == 2
    assert "error: use: 'w' is a tensor (param: or buffer:), not a layer to call — name it in from:" in run.stderr
