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


def _spec(tmp_path, text: str, name: str = "m.yaml") -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


FLAT = """name: Flat
input: {shape: [4, 1, 5, 5]}
layers:
  - {name: conv2d, op: Conv2d, in_channels: 1, out_channels: 2, kernel_size: 3}
  - {name: flatten, op: flatten%s}
  - {name: linear, op: Linear, in_features: 18, out_features: 3}
"""


def test_flatten_keeps_the_batch_by_default_like_nn_flatten(cli, tmp_path) -> None:
    run = cli("shapes", _spec(tmp_path, FLAT % ""), "--format", "json")
    assert run.exit_code == 0, run.stdout
    data = json.loads(run.stdout)
    assert [(x["name"], x["output_shapes"]) for x in data["layers"][2:]] == [("flatten", [[4, 18]]), ("linear", [[4, 3]])]  # fmt: skip


def test_a_batch_merged_by_flatten_from_dim_0_is_named_with_its_fix(cli, tmp_path) -> None:
    path = _spec(tmp_path, FLAT % ", start_dim: 0")
    f = failure(cli, path)
    assert (f["layer"], f["got"]) == ("linear", [[72]])
    assert f["message"] == (
        "Linear expects the last dim to be in_features=18, got 72 (input 72): "
        "flatten merged the batch of 4 into the features (72 = 4 × 18)"
    )
    assert f["hints"] == [
        f"set start_dim: 1 on flatten ({path}:5:5) to keep the batch",
        "with the batch kept, linear gets the 18 features per sample it expects",
    ]  # not in_features: 72, nor an input of 4x1x… that no batch of 4 could ever fit


def test_a_view_that_drops_the_batch_is_named_too(cli, tmp_path) -> None:
    path = _spec(
        tmp_path,
        FLAT.replace("{name: flatten, op: flatten%s}", "{name: reshape, op: reshape, shape: [1, -1]}").replace(
            "18, out", "20, out"
        ),
    )
    f = failure(cli, path)
    assert f["message"].endswith("reshape merged the batch of 4 into the features (72 = 4 × 18)")
    assert f["hints"] == [
        f"keep the batch first in reshape's shape ({path}:5:5), e.g. shape: [-1, 18]",
        "with the batch kept, linear gets 18 features: set in_features: 18",
    ]


def test_a_python_flatten_that_merges_the_batch_gets_the_fix_in_python_terms() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(0), nn.Linear(18, 3))
    report = trace(model, [torch.rand(4, 1, 5, 5)])
    assert report.failure is not None
    assert report.failure.message.endswith("1 (Flatten) merged the batch of 4 into the features (72 = 4 × 18)")
    assert report.failure.hints == [
        "keep the batch dim: flatten from dim 1 (x.flatten(1), nn.Flatten()) or view as (x.size(0), -1)",
        "with the batch kept, 2 gets the 18 features per sample it expects",
    ]


def test_a_flatten_past_the_inputs_dims_suggests_start_dim_0(cli, tmp_path) -> None:
    f = failure(cli, _spec(tmp_path, "input: {shape: [6]}\nlayers:\n  - {op: flatten}\n"))
    assert f["message"] == "flatten from start_dim=1 needs at least 2 dims, got 1-D 6"
    assert f["hints"] == ["set start_dim: 0 to accept this input"]


def test_a_dtype_clash_suggests_dtype(cli) -> None:
    f = failure(cli, "lenet", "--input", "1x1x32x32:float16")
    assert (f["layer"], f["expected"]) == ("conv1", "a float32 input (the dtype of its weights)")
    assert f["message"] == "Conv2d has float32 weights, got a float16 input"
    assert f["hints"] == [
        "--dtype float16 builds the model in float16, as this input is",
        "or give a float32 input (a float32 input takes the model's --dtype)",
    ]
    assert cli("shapes", "lenet", "--input", "1x1x32x32:float16", "--dtype", "float16").exit_code == 0


def test_a_dtype_clash_in_a_python_model() -> None:
    report = trace(nn.Sequential(nn.Linear(4, 2)), [torch.rand(1, 4, dtype=torch.float64)])
    assert report.failure is not None and report.failure.message == "Linear has float32 weights, got a float64 input"
    assert report.failure.hints == ["convert the model with .to(torch.float64), or give a float32 input"]


VARS = """name: VarsMLP
vars: {features: 20, hidden: 20}
input: {shape: [1, "${features}"]}
layers:
  - {name: fc1, op: Linear, in_features: "${features}", out_features: "${hidden}"}
  - {op: relu}
  - {name: fc2, op: Linear, out_features: 2}
"""


def test_a_var_that_sets_the_expected_size_gets_a_set_hint(cli, tmp_path) -> None:
    path = _spec(tmp_path, VARS)
    f = failure(cli, path, "--input", "1x30")
    # hidden is 20 too, but setting it leaves fc1 as it was: only the vars a rebuild confirms are named
    assert [h for h in f["hints"] if h.startswith("--set")] == ["--set features=30 makes the model accept this input"]
    assert f["hints"][0] == "--set features=30 makes the model accept this input"
    assert cli("shapes", path, "--input", "1x30", "--set", "features=30").exit_code == 0


TAGGER = """name: LSTMTagger
vars: {vocab_size: 9, embedding_dim: 6, hidden_dim: 6, tagset_size: 3, sentence_len: 5}
input: {shape: ["${sentence_len}"], dtype: int64, range: [0, "${vocab_size}"]}
layers:
  - {name: word_embeddings, op: Embedding, args: ["${vocab_size}", "${embedding_dim}"]}
  - {op: reshape, shape: ["${sentence_len}", 1, "${embedding_dim}"]}   # embeds.view(len(sentence), 1, -1)
  - {name: lstm, op: LSTM, hidden_size: "${hidden_dim}"}
  - {op: select, index: 0}
  - {op: reshape, shape: [-1, "${hidden_dim}"]}
  - {name: hidden2tag, op: Linear, out_features: "${tagset_size}"}
"""


def test_a_longer_sentence_for_the_tagger_suggests_its_var(cli, tmp_path) -> None:
    path = _spec(tmp_path, TAGGER)
    f = failure(cli, path, "--input", "7:int64")
    assert (f["layer"], f["expected"]) == ("reshape", "30 elements (shape [5, 1, 6])")
    assert f["message"] == "cannot reshape 7x6 (42 elements) to [5, 1, 6]"
    assert f["hints"] == ["--set sentence_len=7 makes the model accept this input", "an input that fits the model: 5"]
    assert cli("shapes", path, "--input", "7:int64", "--set", "sentence_len=7").exit_code == 0


class _Counting:
    """A probe that runs the module's own probe and records the first-input shapes it was asked about."""

    def __init__(self, model: nn.Module, x: torch.Tensor):
        from layerscope.report.diagnose import module_probe

        self.probe = module_probe(model, [x])
        self.asked: list[list[int]] = []

    def __call__(self, shape: list[int], layer: str) -> tuple[bool, bool]:
        self.asked.append(shape)
        return self.probe(shape, layer)


def test_fitting_inputs_are_worked_out_and_only_those_are_run() -> None:
    """The issue's conv net that 1x3x55x55 fits: conv and pool arithmetic give the sizes whose features
    are Linear's 100 (S in 51..58); only they are run, to check the layers after it."""
    model = nn.Sequential(
        nn.Conv2d(3, 4, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(), nn.Linear(100, 10)
    )
    x = torch.rand(1, 3, 64, 64)
    probe = _Counting(model, x)
    report = trace(model, [x], probe=probe)
    assert report.failure is not None
    assert report.failure.hints[-1] == "inputs that fit the model: 1x3x51x51, 1x3x52x52, 1x3x53x53"
    assert probe.asked == [[1, 3, s, s] for s in (51, 52, 53)]
    assert all(trace(model, [torch.rand(1, 3, s, s)]).failure is None for s in range(51, 59))
    assert trace(model, [torch.rand(1, 3, 50, 50)]).failure is not None
    assert trace(model, [torch.rand(1, 3, 59, 59)]).failure is not None


def test_no_fitting_input_is_a_worked_out_claim_with_nothing_run() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(19, 3))  # 2 (S-2)² is never 19
    x = torch.rand(1, 1, 5, 5)
    probe = _Counting(model, x)
    report = trace(model, [x], probe=probe)
    assert report.failure is not None and probe.asked == []
    assert report.failure.hints[-1] == (
        "no input of the form 1x1xSxS with S ≤ 1024 gives 2 what it expects (in_features=19 (the last dim)),"
        " worked out from the sizes of the layers before it"
    )


def test_a_layer_without_a_shape_rule_falls_back_to_trying_and_names_what_it_tried() -> None:
    class Squash(nn.Module):  # a module with no rule in report/fit.py
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flatten(1)

    model = nn.Sequential(nn.Conv2d(1, 2, 3), Squash(), nn.Linear(19, 3))
    report = trace(model, [torch.rand(1, 1, 5, 5)])
    assert report.failure is not None
    assert report.failure.hints[-1] == "no input of the form 1x1xSxS with S ≤ 64 fits the model"  # each of 1..64 ran


def test_a_view_size_is_worked_out_too(cli, tmp_path) -> None:
    spec = "input: {shape: [1, 1, 5, 5]}\nlayers:\n  - {name: conv2d, op: Conv2d, out_channels: 2, kernel_size: 3}\n  - {name: reshape, op: reshape, shape: [-1, 4]}\n"  # fmt: skip
    f = failure(cli, _spec(tmp_path, spec))
    assert (f["layer"], f["expected"]) == ("reshape", "a multiple of 4 elements (shape [-1, 4])")
    assert f["hints"] == ["inputs that fit the model: 1x1x4x4, 1x1x6x6, 1x1x8x8"]  # 2·(S-2)² divisible by 4


def test_a_batchnorm_fed_one_value_per_channel_does_not_stop_the_build(cli) -> None:
    """Built in eval mode as it is traced: BatchNorm takes a 1x16x1x1 input there (training mode
    would not), so the build goes on to the layer that truly rejects it, and the run says so (exit 1)."""
    run = cli("shapes", "bn_convnet", "--input", "1x3x1x1", "--format", "json")
    assert run.exit_code == 1
    data = json.loads(run.stdout)
    assert data["failure"]["layer"] == "pool1"
    assert [n["layer"] for n in data["notes"]] == ["pool1"]  # building stopped at the failing layer, not at bn1


def test_a_batch_merged_without_a_failure_gets_a_note(cli, tmp_path) -> None:
    """flatten from dim 0 before a Linear whose in_features is inferred runs through, one sample wide."""
    spec = tmp_path / "merged.yaml"
    spec.write_text(
        "name: F\ninput: {shape: [4, 1, 5, 5]}\nlayers:\n"
        "  - {name: conv, op: Conv2d, in_channels: 1, out_channels: 2, kernel_size: 3}\n"
        "  - {name: flat, op: flatten, start_dim: 0}\n  - {name: fc, op: Linear, out_features: 3}\n",
        encoding="utf-8",
    )
    data = json.loads(cli("shapes", str(spec), "--format", "json").stdout)
    assert data["output_shapes"] == [[3]]
    assert data["notes"] == [
        {"layer": "flat", "message": "merges the batch of 4 into the features (4x2x3x3 → 72); start_dim: 1 keeps it"}
    ]
    kept = json.loads(cli("shapes", "lstm_tagger", "--format", "json").stdout)  # (5, 1, 6) → (5, 6): no merge
    assert kept["notes"] == []
