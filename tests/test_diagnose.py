"""Shape-mismatch diagnosis: the failing layer, its YAML line, expected vs got, and computed fixes."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from layerscope.report.assemble import run_and_report as trace
from layerscope.spec.ops import FunctionalOp


def failure(cli, *args: str) -> dict:
    run = cli("shapes", *args, "--format", "json")
    assert run.exit_code == 1, run.stderr
    data = json.loads(run.stdout)
    assert set(data["failure"]) >= {"layer", "type", "source", "got", "expected", "message", "hints"}
    return data["failure"]


def test_classifier_on_16x16(cli) -> None:
    f = failure(cli, "configs/classifier.yaml", "--input", "1x3x16x16")
    assert (f["layer"], f["type"], f["source"]) == ("fc", "Linear", "configs/classifier.yaml:18:5")
    assert f["got"] == [[1, 768]]
    assert f["expected"] == "in_features=3072 (the last dim)"
    assert f["message"] == "Linear expects the last dim to be in_features=3072, got 768 (input 1x768)"
    assert f["error"] == "mat1 and mat2 shapes cannot be multiplied (1x768 and 3072x10)"
    assert f["hints"] == [
        "set in_features: 768 to accept this input (or leave it out: layerscope infers it)",
        "an input that fits the model: 1x3x32x32",
    ]
    assert [(s["name"], s["output_shapes"]) for s in f["chain"]] == [
        ("convnet", [[1, 3, 16, 16]]),
        ("flatten", [[1, 768]]),
    ]


def test_lenet_on_28x28(cli) -> None:
    f = failure(cli, "configs/lenet.yaml", "--input", "1x1x28x28")
    assert (f["layer"], f["source"], f["got"]) == ("fc1", "configs/lenet.yaml:15:5", [[1, 400]])
    assert f["expected"] == "in_features=576 (the last dim)"
    assert "inputs that fit the model: 1x1x32x32, 1x1x33x33, 1x1x34x34" in f["hints"]


def test_conv_channel_mismatch(cli) -> None:
    f = failure(cli, "tests/specs/bad_conv_channels.yaml")
    assert (f["layer"], f["type"], f["source"]) == ("conv1", "Conv2d", "tests/specs/bad_conv_channels.yaml:5:5")
    assert f["expected"] == "in_channels=3 (the channel dim)"
    assert f["hints"] == [
        "set in_channels: 1 to accept this input (or leave it out: layerscope infers it)",
        "an input with 3 channels fits: 1x3x32x32",
    ]


def test_lstm_input_size_mismatch(cli) -> None:
    f = failure(cli, "tests/specs/bad_lstm_input_size.yaml")
    assert (f["layer"], f["type"], f["source"], f["got"]) == (
        "lstm",
        "LSTM",
        "tests/specs/bad_lstm_input_size.yaml:5:5",
        [[5, 1, 8]],
    )
    assert f["expected"] == "input_size=6 (the last dim)"
    assert "an input that fits the model: 5x1x6" in f["hints"]


def test_token_id_out_of_range(cli) -> None:
    f = failure(cli, "tests/specs/bad_token_ids.yaml")
    assert (f["layer"], f["type"], f["source"]) == (
        "word_embeddings",
        "Embedding",
        "tests/specs/bad_token_ids.yaml:6:5",
    )
    assert f["expected"] == "ids in [0, 9)"
    assert f["message"] == "Embedding has num_embeddings=9, got ids from 0 to 19"
    assert f["hints"] == [
        "set num_embeddings: 20 to accept this input",
        "or keep the ids below 9: input range [0, 9] in the spec",
    ]


def test_add_of_two_shapes(cli) -> None:
    f = failure(cli, "tests/specs/bad_residual_add.yaml")
    assert (f["layer"], f["type"], f["source"], f["got"]) == (
        "skip",
        "add",
        "tests/specs/bad_residual_add.yaml:6:5",
        [[2, 8], [2, 16]],
    )
    assert f["message"] == "add: 2x8 and 2x16 differ at dim 1 (8 vs 16)"
    # fc1's in_features is inferred, so 2x8 (8 + 8) and 2x1 (broadcast) fit the spec as written
    assert f["hints"] == ["inputs that fit the model: 2x1, 2x8"]


def test_kernel_larger_than_input(cli) -> None:
    f = failure(cli, "tests/specs/bad_kernel.yaml")
    assert (f["layer"], f["expected"]) == ("conv1", "spatial size ≥ 5x5 (kernel 5x5, padding 0x0)")
    # conv1 needs 5x5, but the pool and conv2 behind it need 10x10: the search rebuilds the whole spec
    assert f["hints"] == [
        "the smallest input of the form 1x1xSxS that gets through this layer is 1x1x5x5",
        "inputs that fit the model: 1x1x10x10, 1x1x11x11, 1x1x12x12",
    ]


def test_explicit_in_dim_is_reported_at_that_layer_before_running_further(cli) -> None:
    run = cli("inspect", "configs/lenet.yaml", "--input", "1x1x28x28", "--format", "json")
    data = json.loads(run.stdout)
    assert data["failure"]["layer"] == "fc1"
    assert [layer["name"] for layer in data["layers"]][-1] == "fc1"  # nothing after it ran


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_same_diagnosis_on_either_device(cli, device: str) -> None:
    f = failure(cli, "configs/classifier.yaml", "--input", "1x3x16x16", "--device", device)
    assert (f["layer"], f["expected"], f["hints"][-1]) == (
        "fc",
        "in_features=3072 (the last dim)",
        "an input that fits the model: 1x3x32x32",
    )


def test_python_module_gets_the_same_diagnosis_and_is_left_as_it_was() -> None:
    model = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Flatten(), nn.Linear(3072, 10)).train()
    before = {n: p.clone() for n, p in model.state_dict().items()}
    report = trace(model, [torch.rand(1, 3, 16, 16)])
    assert report.failure is not None
    assert (report.failure.layer, report.failure.expected) == ("2", "in_features=3072 (the last dim)")
    assert report.failure.hints[-1] == "an input that fits the model: 1x3x32x32"
    assert model.training and next(model.parameters()).device.type == "cpu"
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_a_scalar_input_is_explained_without_a_search() -> None:
    report = trace(nn.Sequential(nn.LayerNorm(4)), [torch.tensor(3.0)])
    assert report.failure is not None
    assert (report.failure.layer, report.failure.got) == ("0", [[]])
    assert report.failure.message == "LayerNorm expects the last dim to be normalized_shape=4, got a scalar"
    assert report.failure.hints == []


def test_unexplained_failure_falls_back_to_torchs_message(cli, tmp_path) -> None:
    (tmp_path / "m.yaml").write_text("input: {shape: [2, 3]}\nlayers:\n  - {name: pick, op: select, index: 5}\n")
    f = failure(cli, str(tmp_path / "m.yaml"))
    assert f["layer"] == "pick" and f["expected"] is None and f["hints"] == []
    assert f["message"] == f["error"] == "index 5 is out of bounds for dimension 0 with size 2"


def test_check_reports_which_inputs_fit(cli) -> None:
    args = [
        "check",
        "configs/classifier.yaml",
        "-i",
        "1x3x32x32",
        "-i",
        "1x3x16x16",
        "-i",
        "2x3x32x32",
        "-i",
        "1x1x32x32",
        "-f",
        "json",
    ]
    run = cli(*args)
    assert run.exit_code == 1
    results = json.loads(run.stdout)["results"]
    assert [(r["input_shapes"], r["fits"]) for r in results] == [
        ([[1, 3, 32, 32]], True), ([[1, 3, 16, 16]], False), ([[2, 3, 32, 32]], True), ([[1, 1, 32, 32]], False),
    ]  # fmt: skip
    assert results[2]["output_shapes"] == [[2, 10]]
    assert (results[1]["failure"]["layer"], results[1]["failure"]["got"]) == ("fc", [[1, 768]])
    assert results[3]["failure"]["layer"] == "convnet.conv1"


def test_check_exit_status_is_0_when_all_fit(cli) -> None:
    run = cli("check", "configs/convnet.yaml", "-i", "1x3x8x8", "-i", "4x3x100x50")
    assert run.exit_code == 0 and "2 of 2 input(s) fit" in run.stdout


def test_check_joins_several_inputs_of_one_model_with_commas(cli, tmp_path) -> None:
    spec = "input:\n  - {name: a, shape: [2, 4]}\n  - {name: b, shape: [2, 4]}\nlayers:\n  - {op: add, from: [a, b]}\n"
    (tmp_path / "two.yaml").write_text(spec)
    run = cli("check", str(tmp_path / "two.yaml"), "-i", "3x4,3x4", "-i", "3x4,3x5", "-f", "json")
    assert [r["fits"] for r in json.loads(run.stdout)["results"]] == [True, False]


class _Cat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cat = FunctionalOp("cat", dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cat(x, x[:, :, :2])


# module, input, expected, message: what the explanation reads off the layer's attributes
EXPLAINED = [
    (
        nn.BatchNorm2d(8),
        torch.rand(1, 3, 4, 4),
        "num_features=8 (the channel dim)",
        "BatchNorm2d expects num_features=8 channels, got 3 (input 1x3x4x4)",
    ),
    (
        nn.LayerNorm(16),
        torch.rand(2, 12),
        "normalized_shape=16 (the last dim)",
        "LayerNorm expects the last dim to be normalized_shape=16, got 12 (input 2x12)",
    ),
    (
        nn.RMSNorm([4, 16]),
        torch.rand(2, 4, 12),
        "normalized_shape=4x16 (the trailing dims)",
        "RMSNorm expects trailing dims 4x16, got 2x4x12",
    ),
    (
        nn.GRU(6, 4),
        torch.rand(5, 7),
        "input_size=6 (the last dim)",
        "GRU expects the last dim to be input_size=6, got 7 (input 5x7)",
    ),
    (
        nn.GRU(6, 4),
        torch.rand(5),
        "a 2-D or 3-D input (L, H_in) or (L, N, H_in)",
        "GRU takes 2-D or 3-D input, got 1-D 5",
    ),
    (
        nn.MultiheadAttention(16, 2),
        torch.rand(5, 1, 12),
        "embed_dim=16 (the last dim)",
        "MultiheadAttention expects the last dim to be embed_dim=16, got 12 (input 5x1x12)",
    ),
    (
        nn.TransformerEncoderLayer(16, 2, 32),
        torch.rand(5, 1, 12),
        "embed_dim=16 (the last dim)",
        "MultiheadAttention expects the last dim to be embed_dim=16, got 12 (input 5x1x12)",
    ),
    (
        nn.MaxPool2d(3),
        torch.rand(1, 2, 2, 2),
        "spatial size ≥ 3x3 (kernel 3x3, padding 0x0)",
        "MaxPool2d's window 3x3 is larger than its input 2x2 after padding",
    ),
    (
        nn.AvgPool1d(4),
        torch.rand(1, 2, 3),
        "spatial size ≥ 4 (kernel 4, padding 0)",
        "AvgPool1d's window 4 is larger than its input 3 after padding",
    ),
    (
        nn.Conv1d(2, 4, 3),
        torch.rand(1, 2, 3, 3, 3),
        "a 2-D or 3-D input (C, *spatial) or (N, C, *spatial)",
        "Conv1d takes 2-D or 3-D input, got 5-D 1x2x3x3x3",
    ),
    (nn.Embedding(9, 4), torch.rand(5), "integer ids (int64)", "Embedding takes integer ids, got float32"),
    (_Cat(), torch.rand(2, 3, 4), "equal sizes in every dim but 1", "cat along dim 1: 2x3x4 and 2x3x2 differ at dim 2"),
]


@pytest.mark.parametrize(
    ("module", "x", "expected", "message"),
    EXPLAINED,
    ids=[type(m).__name__ + str(i) for i, (m, *_) in enumerate(EXPLAINED)],
)
def test_expected_is_read_off_the_layer(module: nn.Module, x: torch.Tensor, expected: str, message: str) -> None:
    report = trace(module, [x])
    assert report.failure is not None
    assert (report.failure.expected, report.failure.message) == (expected, message)


@pytest.mark.parametrize(
    "layer",
    [
        "{name: c, op: Conv2d, out_channels: 3, kernel_size: 3, padding: null}",  # torch builds it; forward fails
        "{name: c, op: MaxPool2d, kernel_size: [2, 2], padding: [1, 1, 1]}",  # lengths that do not line up
    ],
)
def test_layers_in_odd_states_fall_back_to_torchs_message(cli, tmp_path, layer: str) -> None:
    (tmp_path / "m.yaml").write_text(f"input: {{shape: [1, 3, 8, 8]}}\nlayers:\n  - {layer}\n")
    run = cli("shapes", str(tmp_path / "m.yaml"), "--format", "json")
    assert run.exit_code == 1
    f = json.loads(run.stdout)["failure"]
    assert f["layer"] == "c" and f["expected"] is None and f["message"] == f["error"]


def test_the_hint_search_is_bounded_by_a_count_not_a_clock() -> None:
    """The same command prints the same hints under any load: the search counts probes, it never reads a clock."""
    from layerscope.report import diagnose

    assert "time" not in vars(diagnose)
    assert diagnose.probe_budget(13) == diagnose.MAX_PROBES  # LeNet's run: every candidate
    assert diagnose.probe_budget(5_000) == 10
    assert diagnose.probe_budget(100_000) == diagnose.MIN_PROBES  # a very deep model: a few


def test_a_search_that_finds_nothing_names_exactly_the_sizes_it_tried() -> None:
    from layerscope.report.diagnose import _tried

    assert _tried(list(range(1, 65))) == "S ≤ 64"
    assert _tried([9, 10, 11, 1, 2, 30]) == "S in 1..2, 9..11, 30"
