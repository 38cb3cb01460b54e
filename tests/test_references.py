"""Figures checked against independent references: published counts, the tutorials' shapes, torchinfo."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchinfo
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from layerscope.builder.builder import build
from layerscope.report.assemble import run_and_report as trace
from layerscope.report.model import Report
from layerscope.spec.model import load_spec
from layerscope.spec.ops import FUNCTIONAL_OPS

from conftest import CONFIGS, ROOT
from reference_models import PUBLISHED, REFERENCES


def report_for(config: str, *shapes: tuple[int, ...]) -> Report:
    spec = load_spec(ROOT / "configs" / f"{config}.yaml")
    inputs = None
    if shapes:
        from dataclasses import replace

        inputs = [replace(spec.inputs[i], shape=s) for i, s in enumerate(shapes)]
    built = build(spec, inputs)
    return trace(built.model, built.inputs, name=spec.name, sources=built.sources)


def torchinfo_summary(model: nn.Module, inputs: list[torch.Tensor]) -> torchinfo.ModelStatistics:
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # layerscope traces without it, so sublayers run
    try:
        return torchinfo.summary(model, input_data=inputs, verbose=0, depth=100, device="cpu")
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def leaf_outputs_torchinfo(summary: torchinfo.ModelStatistics) -> list[list[int]]:
    return [list(layer.output_size) for layer in summary.summary_list if layer.is_leaf_layer and layer.executed]


def leaf_outputs(report: Report) -> list[list[int]]:
    # torchinfo keeps the first tensor of a tuple output (LSTM's output, not (h, c))
    return [layer.output_shapes[0] for layer in report.layers if layer.is_leaf]


def layer(report: Report, name: str):
    return next(r for r in report.layers if r.name == name)


def test_tinymodel_has_22210_params() -> None:
    report = report_for("tinymodel")
    assert report.total_params == 22_210
    assert report.output_shapes == [[1, 10]]


def test_lenet_params_and_the_tutorials_shapes() -> None:
    report = report_for("lenet")
    assert report.total_params == 81_290
    chain = [r.output_shapes[0][1:] for r in report.layers if r.type in ("Conv2d", "max_pool2d", "flatten", "Linear")]
    assert chain == [[6, 28, 28], [6, 14, 14], [16, 12, 12], [16, 6, 6], [576], [120], [84], [10]]
    assert layer(report, "conv2").num_params == 6 * 16 * 9 + 16  # in_channels inferred as 6


def test_classifier_fits_32x32_with_30982_params() -> None:
    report = report_for("classifier")
    assert report.failure is None
    assert report.total_params == 30_982
    assert report.input_shapes == [[1, 3, 32, 32]]
    assert report.output_shapes == [[1, 10]]


def test_classifier_fails_on_16x16_at_the_linear_layer() -> None:
    report = report_for("classifier", (1, 3, 16, 16))
    assert report.failure is not None
    assert (report.failure.layer, report.failure.type) == ("fc", "Linear")
    assert report.failure.got == [[1, 768]]
    assert "3072" in report.failure.message
    assert report.failure.source == f"{ROOT / 'configs' / 'classifier.yaml'}:18:5"


def test_convnet_keeps_any_spatial_size() -> None:
    for size in (8, 32, 57):
        assert report_for("convnet", (1, 3, size, size)).output_shapes == [[1, 3, size, size]]


def test_tied_layer_is_counted_once_and_marked() -> None:
    report = report_for("tied_mlp")
    assert report.total_params == 121  # 40 + 72 + 9, the shared 72 once
    tied = {p.name: p for p in report.params}
    assert tied["shared_again.weight"].shared_with == ["shared.weight"]
    assert tied["shared.weight"].shared_with == ["shared_again.weight"]
    assert (tied["shared.weight"].counted, tied["shared_again.weight"].counted) == (True, False)
    assert layer(report, "shared_again").shared_with == "shared"


def test_lstm_tagger_scores_every_word() -> None:
    report = report_for("lstm_tagger")
    assert report.total_params == 9 * 6 + 4 * 6 * (6 + 6) + 2 * 4 * 6 + 6 * 3 + 3
    assert layer(report, "lstm").output_shapes == [[5, 1, 6], [1, 1, 6], [1, 1, 6]]
    assert report.output_shapes == [[5, 3]]


def test_bn_convnet_has_25674_params() -> None:
    report = report_for("bn_convnet")
    assert report.total_params == 25_674
    assert layer(report, "bn2").num_params == 2 * 32  # num_features inferred from conv2
    assert report.output_shapes == [[1, 10]]


INFERENCE_SPEC = """
input: {shape: [2, 7, 12]}
layers:
  - {name: ln, op: LayerNorm}
  - {name: rms, op: RMSNorm}
  - {name: gru, op: GRU, hidden_size: 5, batch_first: true}
  - {op: select, index: 0}
  - {op: transpose, dim0: 1, dim1: 2}
  - {name: bn, op: BatchNorm1d}
  - {name: conv, op: Conv1d, out_channels: 4, kernel_size: 3}
  - {name: gn, op: GroupNorm, num_groups: 2}
  - {name: deconv, op: ConvTranspose1d, out_channels: 3, kernel_size: 2}
  - {name: inorm, op: InstanceNorm1d, affine: true}
  - {op: flatten, start_dim: 1}
  - {name: fc, op: Linear, out_features: 2}
"""


def test_every_inference_rule_reads_the_right_dim(tmp_path: Path) -> None:
    (tmp_path / "infer.yaml").write_text(INFERENCE_SPEC)
    model = build(load_spec(tmp_path / "infer.yaml")).model
    assert model.ln.normalized_shape == (12,)
    assert model.rms.normalized_shape == (12,)
    assert model.gru.input_size == 12
    assert model.bn.num_features == 5
    assert model.conv.in_channels == 5
    assert model.gn.num_channels == 4
    assert model.deconv.in_channels == 4
    assert model.inorm.num_features == 3
    assert model.fc.in_features == 3 * 6


def test_module_names_are_the_yaml_names() -> None:
    spec = load_spec(ROOT / "configs" / "lenet.yaml")
    names = [n for n, _ in build(spec).model.named_parameters()]
    assert names == [f"{layer}.{p}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3") for p in ("weight", "bias")]


# torchinfo copies inputs to a device, which meta tensors cannot do: these are built on the CPU,
# but for GPT-2 (5 s of real matmuls) and the LLaMAs (27 GB and 276 GB)
ON_CPU = [c for c in CONFIGS if c not in ("gpt2", "llama_7b", "llama2_70b")]


@pytest.mark.parametrize("config", ON_CPU)
def test_every_config_matches_torchinfo_on_the_built_module(config: str) -> None:
    spec = load_spec(ROOT / "configs" / f"{config}.yaml")
    built = build(spec, device="cpu")
    summary = torchinfo_summary(built.model, list(built.inputs))
    report = trace(built.model, built.inputs)
    assert report.total_params == summary.total_params
    assert leaf_outputs(report) == leaf_outputs_torchinfo(summary)


@pytest.mark.parametrize("config", sorted(REFERENCES))
def test_every_config_matches_its_python_twin(config: str) -> None:
    """The YAML spec and the model written in Python have equal totals and equal shapes per parameterised layer."""
    factory, make_inputs = REFERENCES[config]
    reference = factory()
    summary = torchinfo_summary(reference, make_inputs())
    report = report_for(config)
    assert report.total_params == summary.total_params
    ours = [(r.type, r.output_shapes[0]) for r in report.layers if r.is_leaf and r.num_params]
    theirs = [
        (t.class_name, list(t.output_size))
        for t in summary.summary_list
        if t.is_leaf_layer and t.executed and t.num_params
    ]
    assert ours == theirs
    assert report.output_shapes[0] == list(summary.summary_list[0].output_size)


def test_every_config_has_an_independent_reference() -> None:
    assert sorted(set(REFERENCES) | set(PUBLISHED)) == CONFIGS


@pytest.mark.parametrize("config", sorted(PUBLISHED))
def test_zoo_spec_has_its_published_parameter_count(config: str) -> None:
    report = report_for(config)
    assert report.failure is None
    assert report.total_params == PUBLISHED[config]
    assert report.trainable_params == PUBLISHED[config]


def test_llama_7b_is_built_on_meta_with_flops() -> None:
    spec = load_spec(ROOT / "configs" / "llama_7b.yaml")
    built = build(spec)
    assert built.device.type == "meta"  # 27 GB of float32 weights are never allocated
    report = trace(built.model, built.inputs)
    assert report.output_shapes == [[1, 2048, 32000]]
    # each of the 32 layers multiplies 2048 tokens by 4·4096² + 3·4096·11008 weights, plus the head
    matmuls = 2 * 2048 * (32 * (4 * 4096**2 + 3 * 4096 * 11008) + 4096 * 32000)
    attention = 32 * 2 * (2 * 2048 * 2048 * 4096)  # q·kᵀ and attn·v per layer (FlopCounterMode ignores the mask)
    assert report.total_flops == matmuls + attention


def test_llama2_70b_shares_8_key_value_heads_among_64_query_heads() -> None:
    built = build(load_spec(ROOT / "configs" / "llama2_70b.yaml"))
    assert built.device.type == "meta"  # 276 GB of float32 weights
    report = trace(built.model, built.inputs)
    shapes = {r.name: r.output_shapes[0] for r in report.layers}
    assert shapes["layers.0.k_proj"] == shapes["layers.0.v_proj"] == [1, 4096, 1024]
    assert shapes["layers.0.self_attn"] == [1, 4096, 8192]
    # grouped heads save weights, not attention work: all 64 heads attend over the 4096 tokens
    matmuls = 2 * 4096 * (80 * (2 * 8192**2 + 2 * 8192 * 1024 + 3 * 8192 * 28672) + 8192 * 32000)
    attention = 80 * 2 * (2 * 4096 * 4096 * 8192)
    assert report.total_flops == matmuls + attention


def test_grouped_query_attention_equals_repeating_the_key_value_heads() -> None:
    from layerscope.spec.ops import attention

    torch.manual_seed(0)
    q, k, v = torch.randn(1, 5, 8), torch.randn(1, 5, 4), torch.randn(1, 5, 4)  # 4 query heads, 2 kv heads
    grouped = attention(q, k, v, num_heads=4)
    full = attention(
        q, *(x.unflatten(-1, (2, 2)).repeat_interleave(2, dim=-2).flatten(-2) for x in (k, v)), num_heads=4
    )
    assert torch.allclose(grouped, full)
    with pytest.raises(ValueError, match="4 query heads cannot share 3 key"):
        attention(q, torch.randn(1, 5, 6), torch.randn(1, 5, 6), num_heads=4)


def test_gpt2_head_is_tied_to_the_token_embedding() -> None:
    report = report_for("gpt2")
    params = {p.name: p for p in report.params}
    assert params["lm_head.weight"].shared_with == ["wte.weight"]
    assert params["lm_head.weight"].counted is False
    assert report.output_shapes == [[1, 1024, 50257]]


def test_resnet18_macs_are_the_well_known_1_82_g() -> None:
    report = report_for("resnet18")
    assert abs(report.total_flops / 2 - 1.82e9) / 1.82e9 < 0.01


def flop_counts(model: nn.Module, inputs: list[torch.Tensor]) -> dict[str, int]:
    """FlopCounterMode's own per-module totals (keys: qualified names without the root's class)."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    # under the conditions layerscope traces in: MHA's fused fast path and oneDNN's LSTM kernel off
    fastpath, mkldnn = torch.backends.mha.get_fastpath_enabled(), torch.backends.mkldnn.enabled
    torch.backends.mha.set_fastpath_enabled(False)
    torch.backends.mkldnn.enabled = False
    try:
        # torch has no formula for the CPU's fused attention kernel; layerscope counts it as the
        # flash kernel it computes, which is also what the same model counts on meta
        cpu_sdpa = {
            torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *_, **__: sdpa_flop_count(
                q, k, v
            )
        }
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=cpu_sdpa) as counter:
            model.eval()(*inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        torch.backends.mkldnn.enabled = mkldnn
    root = type(model).__name__
    return {k.removeprefix(root).removeprefix("."): sum(v.values()) for k, v in counter.get_flop_counts().items()}


@pytest.mark.parametrize("config", ["lenet", "transformer_encoder", "resnet18", "vit_b_16", "bert_base", "gpt2"])
def test_per_layer_flops_equal_flop_counter_mode_on_the_same_module(config: str) -> None:
    spec = load_spec(ROOT / "configs" / f"{config}.yaml")
    built = build(spec, device="meta")
    report = trace(built.model, built.inputs)
    theirs = flop_counts(built.model, list(built.inputs))
    ours = {r.name: r.flops for r in report.layers if r.shared_with is None}
    assert report.total_flops == theirs["Global"] > 0
    for name, flops in ours.items():
        assert flops == theirs.get(name, 0), name


@pytest.mark.parametrize("config", sorted(REFERENCES))
def test_flops_equal_flop_counter_mode_on_the_python_twin(config: str) -> None:
    factory, make_inputs = REFERENCES[config]
    twin = factory()
    inputs = make_inputs()
    twin(*inputs)  # lazy layers take their sizes
    report = report_for(config)
    theirs = flop_counts(twin, inputs)
    assert report.total_flops == theirs["Global"]
    ours: dict[str, int] = {}  # per module: a shared module's calls add up, as FlopCounterMode counts them
    functional = 0  # a spec's functional ops (matmul) are what the twin computes in its own forward
    for r in report.layers:
        if r.is_leaf and r.flops and r.type in FUNCTIONAL_OPS:
            functional += r.flops
        elif r.is_leaf and r.flops:
            ours[r.shared_with or r.name] = ours.get(r.shared_with or r.name, 0) + r.flops
    leaves = [n for n, m in twin.named_modules() if not list(m.children()) and theirs.get(n)]
    assert list(ours.values()) == [theirs[n] for n in leaves]
    # the rest of the twin's FLOPs are in non-leaf forwards: its own matmuls, MultiheadAttention's attention
    assert functional <= theirs["Global"] - sum(theirs[n] for n in leaves)


@pytest.mark.parametrize(
    "spec_file",
    [
        *[ROOT / "configs" / f"{c}.yaml" for c in ("lenet", "lstm_tagger", "tied_mlp", "bn_convnet", "resnet18")],
        ROOT / "configs" / "transformer_encoder.yaml",  # attention: fused on the CPU, two matmuls on meta
        ROOT / "tests" / "specs" / "tiny_blocks.yaml",
    ],
    ids=lambda p: p.stem,
)
def test_meta_and_cpu_give_the_same_report(spec_file: Path) -> None:
    """Meta answers common ops by shape (run/counting.py) and the CPU computes them: same tables."""
    spec = load_spec(spec_file)
    on_cpu, on_meta = build(spec, device="cpu"), build(spec, device="meta")
    a = trace(on_cpu.model, on_cpu.inputs).to_dict()
    b = trace(on_meta.model, on_meta.inputs).to_dict()
    assert (a.pop("device"), b.pop("device")) == ("cpu", "meta")
    assert a == b


def test_auto_device_counts_inputs_and_activations() -> None:
    spec = load_spec(ROOT / "configs" / "convnet.yaml")
    from dataclasses import replace

    big = [replace(spec.inputs[0], shape=(1, 3, 20_000, 20_000))]  # 4.8 GB of input, 252 parameters
    built = build(spec, big)
    assert built.device.type == "meta"
    assert trace(built.model, built.inputs).output_shapes == [[1, 3, 20_000, 20_000]]
    assert build(spec).device.type == "cpu"


def test_auto_device_counts_work_too(tmp_path: Path) -> None:
    """64 MB of weights fit the CPU budget, but 8.6 G multiply-adds do not: meta, before any runs."""
    spec_file = tmp_path / "wide.yaml"
    spec_file.write_text("input: {shape: [1, 512, 4096]}\nlayers:\n  - {op: Linear, out_features: 4096}\n")
    assert build(load_spec(spec_file)).device.type == "meta"
    spec_file.write_text("input: {shape: [1, 8, 4096]}\nlayers:\n  - {op: Linear, out_features: 4096}\n")
    assert build(load_spec(spec_file)).device.type == "cpu"  # 134 M multiply-adds


def test_work_estimates_are_exact_for_linear_and_bound_convolutions() -> None:
    from layerscope.run import devices

    linear, x = nn.Linear(64, 32), torch.empty(2, 10, 64)
    assert devices.estimated_macs(linear, [x]) == 2 * 10 * 64 * 32 + 2 * 10 * 32  # the bias counts as weights
    conv, image = nn.Conv2d(3, 8, 3, padding=1), torch.empty(1, 3, 16, 16)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        conv(image)
    assert counter.get_total_flops() // 2 <= devices.estimated_macs(conv, [image]) < counter.get_total_flops()


def test_build_allocates_nothing_on_meta(tmp_path: Path) -> None:
    spec_file = tmp_path / "huge.yaml"
    spec_file.write_text(
        "input: {shape: [1, 100000]}\nlayers:\n  - {op: Linear, out_features: 100000}\n  - {op: Linear, out_features: 100000}\n"
    )
    built = build(load_spec(spec_file))  # 80 GB of float32 weights: auto must pick meta
    assert built.device.type == "meta"
    assert trace(built.model, built.inputs).total_params == 2 * (100_000 * 100_000 + 100_000)


def test_a_python_module_traced_on_meta_stand_ins_is_left_as_it_was() -> None:
    """torchinfo users see their model moved and its mode changed (TylerYep/torchinfo#287); here
    a copy of the module runs on meta stand-ins for its tensors and every module keeps its own mode."""
    from layerscope.report.assemble import report
    from layerscope.run.inputs import Inputs
    from layerscope.run.runner import run_on

    factory, make_inputs = REFERENCES["resnet18"]
    model = factory()
    model.train()
    model[4].eval()  # a mixed-mode model: must come back mixed
    model[14].weight.requires_grad_(False)  # the classifier's weights, frozen
    model[0].register_forward_hook(lambda *_: None)
    before = {n: (t, t.clone()) for n, t in model.state_dict(keep_vars=True).items()}
    modes = {n: m.training for n, m in model.named_modules()}
    hooks = {n: (len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()}

    x = make_inputs()[0]
    on_meta = report(run_on(model, torch.device("meta"), Inputs((x.to("meta"),)))).to_dict()
    on_cpu = report(run_on(model, torch.device("cpu"), Inputs((x,)))).to_dict()

    assert (on_meta.pop("device"), on_cpu.pop("device")) == ("meta", "cpu")
    assert on_meta == on_cpu
    assert on_meta["trainable_params"] == on_meta["total_params"] - 512 * 1000
    after = model.state_dict(keep_vars=True)
    assert all(after[n] is t and torch.equal(t, copy) and t.device.type == "cpu" for n, (t, copy) in before.items())
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: (len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()} == hooks
