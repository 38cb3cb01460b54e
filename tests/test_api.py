"""The Python API: layerscope.load / build / inspect give what the CLI gives."""

from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console
from torch import nn

import layerscope
from layerscope.errors import LayerscopeError, UsageError

from conftest import ROOT
from reference_models import REFERENCES


def test_load_takes_a_bundled_name_or_a_file_and_var_overrides() -> None:
    assert layerscope.load("lenet").name == "LeNet"
    spec = layerscope.load(ROOT / "tests" / "specs" / "tiny_blocks.yaml", depth=1)
    assert spec.name == "TinyBlocks"
    assert (
        layerscope.inspect(spec).total_params
        < layerscope.inspect(ROOT / "tests" / "specs" / "tiny_blocks.yaml").total_params
    )


def test_build_gives_a_trainable_module_with_torchs_initial_weights() -> None:
    torch.manual_seed(0)
    first, second = layerscope.build("lenet"), layerscope.build("lenet")
    assert isinstance(first, nn.Module) and first.training
    weight = first.get_parameter("conv1.weight")
    bound = 1 / (1 * 5 * 5) ** 0.5  # kaiming_uniform_(a=√5) on a 1-channel 5x5 kernel
    assert torch.isfinite(weight).all() and 0 < weight.abs().max() <= bound
    assert not torch.equal(weight, second.get_parameter("conv1.weight"))  # drawn, not left as memory held
    out = first(torch.randn(4, 1, 32, 32))
    out.sum().backward()
    assert out.shape == (4, 10) and weight.grad is not None


def test_build_reads_left_out_in_dims_off_input_size() -> None:
    spec = layerscope.load(ROOT / "tests" / "specs" / "tiny_blocks.yaml")
    model = layerscope.build(spec, [(3, 9)])
    assert model(torch.zeros(3, 9, dtype=torch.int64)).shape == (3, 5)


def test_inspect_of_a_spec_is_the_clis_json(cli) -> None:
    assert layerscope.inspect("lenet").to_dict() == json.loads(cli("inspect", "lenet", "--format", "json").stdout)
    assert layerscope.inspect("classifier", (1, 3, 16, 16)).failure.layer == "fc"


def test_a_report_renders_as_the_inspect_table_in_a_terminal_and_in_jupyter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # the terminal's width, for str(report)
    report = layerscope.inspect(ROOT / "configs" / "lenet.yaml")
    out = io.StringIO()
    Console(file=out, width=120).print(report)
    lines = [line.rstrip() for line in out.getvalue().splitlines()]  # rich pads the totals grid's lines
    assert lines == (ROOT / "tests" / "golden" / "lenet.inspect.txt").read_text().splitlines()
    assert str(report).splitlines() == lines  # print(report): the same table, as wide as the terminal
    assert repr(report) == "<InspectReport LeNet: 1x1x32x32 → 1x10, 81,290 params>"
    assert repr(layerscope.inspect("classifier", (1, 3, 16, 16))).endswith(" params, failed>")
    bundle = report._repr_mimebundle_([], [])  # what Jupyter asks a rich object for
    assert "LeNet — layers" in bundle["text/plain"] and "<pre" in bundle["text/html"]


def per_leaf(report: layerscope.api.Report) -> list[tuple[str, int, list[list[int]]]]:
    return [(r.type, r.num_params, r.output_shapes) for r in report.layers if r.is_leaf and r.num_params]


@pytest.mark.parametrize("config", ["lenet", "lstm_tagger", "bn_convnet", "resnet18", "transformer_encoder"])
def test_a_python_module_gives_the_report_of_its_yaml_twin(config: str) -> None:
    factory, make_inputs = REFERENCES[config]
    ours = layerscope.inspect(factory(), inputs=make_inputs())
    theirs = layerscope.inspect(config)
    assert (ours.total_params, ours.total_flops, ours.output_shapes) == (
        theirs.total_params,
        theirs.total_flops,
        theirs.output_shapes,
    )
    assert per_leaf(ours) == per_leaf(theirs)


def test_a_python_module_that_rejects_its_input_is_diagnosed() -> None:
    factory, _ = REFERENCES["classifier"]
    report = layerscope.inspect(factory(), (1, 3, 16, 16))
    assert report.failure is not None
    assert report.failure.expected == "in_features=3072 (the last dim)"
    assert "got 768" in report.failure.message


def test_inspecting_leaves_the_module_on_its_device_in_its_modes_with_its_weights() -> None:
    factory, _ = REFERENCES["resnet50"]  # big enough to run on meta stand-ins
    model = factory().train()
    before = {n: (t, t.clone()) for n, t in model.state_dict(keep_vars=True).items()}
    report = layerscope.inspect(model, (1, 3, 224, 224))
    assert report.device == "meta" and report.total_params == 25_557_032
    after = model.state_dict(keep_vars=True)
    assert all(after[n] is t and torch.equal(t, copy) for n, (t, copy) in before.items())
    assert all(m.training for m in model.modules())


def test_lazy_modules_are_inspected_on_a_copy() -> None:
    model = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
    report = layerscope.inspect(model, (4, 3))
    assert report.total_params == 3 * 8 + 8 + 8 * 2 + 2
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)  # theirs never materialised


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: layerscope.inspect(nn.Linear(2, 2), (1, 2), dtypes=["int65"]), "unknown dtype 'int65'"),
        (lambda: layerscope.inspect(nn.Linear(2, 2), (1, 2), dtypes=["int64", "bool"]), "2 dtypes for 1 inputs"),
        (lambda: layerscope.inspect(nn.Linear(2, 2), ("a", 2)), "input_size ('a', 2) is not a shape"),
        (lambda: layerscope.inspect(nn.Linear(2, 2), (1, 2), device="tpu"), "unknown device 'tpu'"),
        (lambda: layerscope.load("lenett"), "'lenett' is neither a file nor a bundled spec"),
    ],
)
def test_bad_arguments_raise_usage_errors(call, message: str) -> None:
    with pytest.raises(UsageError) as error:
        call()
    assert error.value.message.startswith(message)


def test_inputs_take_every_form_a_forward_takes() -> None:
    import numpy as np

    from python_models import Pair, Tagger

    ids = np.arange(24).reshape(2, 12)
    assert layerscope.inspect(Tagger(), inputs=ids).output_shapes == [[2, 12, 2]]  # numpy
    by_keyword = layerscope.inspect(Tagger(), inputs={"ids": torch.zeros(2, 5, dtype=torch.long)})
    assert by_keyword.output_shapes == [[2, 5, 2]]
    mixed = layerscope.inspect(Tagger(), inputs=[ids], kwargs={"attention_mask": np.ones((2, 12), dtype=np.int64)})
    assert mixed.failure is None and mixed.input_shapes == [[2, 12], [2, 12]]
    nested = layerscope.inspect(
        Pair(), inputs=([torch.ones(3, 4), np.ones((3, 4), np.float32)], {"bias": torch.ones(4)})
    )
    assert nested.output_shapes == [[3, 2]] and nested.input_shapes == [[3, 4], [3, 4], [4]]


def test_input_size_with_dtypes_and_keywords_makes_realistic_values() -> None:
    from python_models import Tagger

    # ids below the smallest vocabulary, masks of ones: anything else raises in this model
    report = layerscope.inspect(Tagger(vocab=5), {"ids": (2, 30), "attention_mask": (2, 30)}, dtypes=["int64", "int64"])
    assert report.failure is None and report.output_shapes == [[2, 30, 2]]
    assert layerscope.inspect(Tagger(), [(2, 7)], dtypes=[torch.long]).output_shapes == [[2, 7, 2]]


def test_made_values_follow_the_seed_and_leave_the_global_generator_alone() -> None:
    from layerscope.run.inputs import Example, make

    model = nn.Embedding(10, 3)
    state = torch.random.get_rng_state()
    a = make([Example((4, 50), torch.long)], model, torch.device("cpu"), seed=1).args[0]
    b = make([Example((4, 50), torch.long)], model, torch.device("cpu"), seed=1).args[0]
    c = make([Example((4, 50), torch.long)], model, torch.device("cpu"), seed=2).args[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.min()) == 0 and int(a.max()) == 9  # every id an Embedding of 10 takes, none past it
    assert torch.equal(torch.random.get_rng_state(), state)
    no_embedding = make([Example((100,), torch.int32)], nn.Linear(2, 2), torch.device("cpu")).args[0]
    assert int(no_embedding.min()) >= 1 and int(no_embedding.max()) <= 7


def test_without_input_a_module_gives_its_tree_and_parameters() -> None:
    factory, _ = REFERENCES["resnet50"]
    report = layerscope.inspect(factory())
    assert report.ran is False and report.total_params == 25_557_032 and report.output_shapes == []
    assert "need an input" in report.notes[0].message


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: layerscope.inspect(nn.Linear(2, 2), (1, 2), seed=2**70),
            "seed 1180591620717411303424 is out of range",
        ),
        (lambda: layerscope.inspect(nn.Linear(2, 2), (True, 2)), "input_size (True, 2) is not a shape"),
        (
            lambda: layerscope.inspect(nn.Linear(2, 2), (2**40, 2**40, 2)),
            "input_size (1099511627776, 1099511627776, 2)",
        ),
        (lambda: layerscope.inspect(nn.Linear(2, 2), (1, 2), dtypes=[torch.qint8]), "unknown dtype torch.qint8"),
        (lambda: layerscope.inspect(nn.Linear(2, 2), (1, 2), dtypes={"x": "int64"}), "dtypes= by name needs"),
        (lambda: layerscope.inspect(nn.Linear(2, 2), (1, 2), dtypes=3), "dtypes 3 is not a dtype"),
        (
            lambda: layerscope.inspect(nn.Linear(2, 2), inputs=__import__("numpy").array(["a"])),
            "a numpy input of dtype",
        ),
        (
            lambda: layerscope.inspect(nn.Linear(2, 2).to("meta"), (1, 2), device="cpu"),
            "the model's weights are on meta",
        ),
    ],
)
def test_bad_module_inputs_raise_usage_errors(call, message: str) -> None:
    with pytest.raises(LayerscopeError) as error:
        call()
    assert error.value.message.startswith(message), error.value.message


def test_dtypes_by_name_follow_the_names_and_one_dtype_serves_all() -> None:
    class Two(nn.Module):
        def forward(self, a, b):
            assert a.dtype == torch.float32 and b.dtype == torch.int64
            return a + b

    report = layerscope.inspect(Two(), {"a": (2, 4), "b": (2, 4)}, dtypes={"b": "int64", "a": "float32"})
    assert report.failure is None
    assert layerscope.inspect(nn.Embedding(5, 2), [(3,), (3,)][:1], dtypes=torch.long).failure is None
    assert layerscope.inspect(nn.Linear(2, 2), {}).ran is False


def test_a_layer_that_makes_a_huge_output_stops_the_cpu_run_before_the_next_one() -> None:
    """Upsample has no weights, so its work looks small; its 1 GB output, predicted from its scale
    before it runs, moves the run to meta (and the pytest process never holds it)."""
    model = nn.Sequential(nn.Upsample(scale_factor=40), nn.Conv2d(3, 1, 1))
    report = layerscope.inspect(model, (1, 3, 224, 224))
    assert report.device == "meta" and report.output_shapes == [[1, 1, 8960, 8960]]


def test_a_dataclass_output_is_reported_as_its_tensors() -> None:
    from dataclasses import dataclass

    @dataclass
    class Out:
        logits: torch.Tensor
        hidden: tuple[torch.Tensor, ...]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            h = self.fc(x)
            return Out(h.softmax(-1), (h, h.sum()))

    assert layerscope.inspect(Net(), (2, 4)).output_shapes == [[2, 3], [2, 3], []]


@pytest.mark.parametrize("config", ["lenet", "convnet"])
def test_a_model_has_one_activation_figure_in_python_and_in_yaml(config: str) -> None:
    """A spec's relu/add/flatten stand for function calls a Python model makes: neither counts them."""
    factory, make_inputs = REFERENCES[config]
    ours, theirs = layerscope.inspect(factory(), inputs=make_inputs()), layerscope.inspect(config)
    assert ours.activation_bytes == theirs.activation_bytes > 0
    assert ours.total_bytes == theirs.total_bytes
