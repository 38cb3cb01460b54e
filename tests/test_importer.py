"""`layerscope import`: a Python model → a spec. The round trip (tests/import_roundtrip.py) checks the
spec against the Python model through two independent inspections; the real-forward tests load the
Python model's own weights into the built spec (strictly) and compare outputs on a CPU forward."""

from __future__ import annotations

import stat
from pathlib import Path

import import_models as python_import_models
import pytest
import torch
import zoo_twins
from torch import nn

import layerscope
from layerscope.errors import UsageError
from layerscope.importer.document import to_spec
from layerscope.spec.model import parse_model
from layerscope.spec.source import load_documents

import python_models
import reference_models as ref
from import_roundtrip import round_trip
from test_untouched import state

# expressible models of the test zoo, with the input they take
EXPRESSIBLE = {
    "zoo resnet18": (zoo_twins.TWINS["resnet18"], [1, 3, 224, 224]),
    "zoo resnet50": (zoo_twins.TWINS["resnet50"], [1, 3, 224, 224]),
    "LeNet": (ref.LeNet, [1, 1, 32, 32]),
    "TinyModel": (ref.TinyModel, [1, 100]),
    "Classifier": (ref.Classifier, [1, 3, 32, 32]),
    "python_models.Classifier": (python_models.Classifier, [1, 3, 32, 32]),
    "bn_convnet": (ref.bn_convnet, [1, 3, 32, 32]),
    "exercise_convnet": (ref.exercise_convnet, [1, 1, 32, 32]),
    "three_layer_mlp": (lambda: ref.three_layer_mlp(True), [1, 784]),
    "small": (python_models.small, [3, 2]),
}


def built(text: str) -> nn.Module:
    spec = parse_model(load_documents(text, "<imported>")[0], default_name="imported")
    return layerscope.build(spec)


@pytest.mark.parametrize("name", EXPRESSIBLE)
def test_the_imported_spec_inspects_as_the_python_model_does(name: str) -> None:
    make, shape = EXPRESSIBLE[name]
    trip = round_trip(make(), [shape], name)
    assert trip.ok, trip.differences
    assert trip.layers > 0 and trip.params[0] > 0 and trip.flops[0]


@pytest.mark.parametrize("name", ["LeNet", "zoo resnet18", "Classifier", "bn_convnet"])
def test_the_python_weights_load_strictly_and_compute_the_same_output(name: str) -> None:
    make, shape = EXPRESSIBLE[name]
    torch.manual_seed(0)
    model = make().eval()
    ours = built(to_spec(model, [(tuple(shape), "float32")], "imported")).eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(shape)
    with torch.no_grad():
        assert torch.allclose(ours(x), model(x), atol=1e-5)


def test_resnet_blocks_fold_into_one_block_and_repeats() -> None:
    """torchvision's BasicBlock with and without its downsample: one block, the downsample switched by
    `when:`, each stage a `repeat: 2` whose first block strides and downsamples — as configs/resnet18.yaml."""
    text = to_spec(zoo_twins.TWINS["resnet18"](), [((1, 3, 224, 224), "float32")], "ResNet")
    document = load_documents(text, "<imported>")[0]
    assert list(document["blocks"]) == ["BasicBlock"]
    assert document["blocks"]["BasicBlock"]["layers"][0]["when"] == "${with_downsample}"
    stages = {layer.get("name"): layer for layer in document["layers"]}
    assert stages["layer1"]["repeat"] == 2 and stages["layer1"]["with_downsample"] is False
    assert stages["layer3"]["stride"] == "${2 if i == 0 else 1}" and stages["layer3"]["out_channels"] == 256
    assert "{op: add, from: [bn2, downsample]}" in text and "{use: relu}" in text


def test_importing_leaves_the_model_and_torch_as_they_were() -> None:
    model = zoo_twins.TWINS["resnet18"]().train()
    before, rng = state(model), torch.random.get_rng_state()
    to_spec(model, [((1, 3, 64, 64), "float32")], "ResNet")
    assert state(model) == before and model.training
    assert torch.equal(torch.random.get_rng_state(), rng)


class Sine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.fc(x))


INEXPRESSIBLE = {
    # a function with no spec op, named with where it is called
    "Sine": (Sine, [2, 4], r"^the model: torch\.sin\(…\) has no equivalent in the spec language"),
    # a dict output
    "TwoHeads": (python_models.TwoHeads, [2, 8], r"^the model: returns a dict, not one tensor"),
    # control flow on values (D2L's `while X.abs().sum() > 1`), its LazyLinear not yet made
    "FixedHiddenMLP": (ref.FixedHiddenMLP, [2, 20], r"^linear: LazyLinear is lazy and not yet made"),
    # a ModuleList's children called one by one, inside a block
    "reference resnet": (lambda: ref.resnet([1, 1, 1, 1], False), [1, 3, 64, 64], r"^4: convs\.0\(…\): calls convs\.0"),
    # lazy layers not yet made
    "NestMLP": (ref.NestMLP, [2, 20], r"^net\.0: LazyLinear is lazy and not yet made"),
    # an input the model rejects
    "exercise_convnet 28x28": (ref.exercise_convnet, [1, 1, 28, 28], r"^7: the model does not accept its input here"),
}


@pytest.mark.parametrize("name", INEXPRESSIBLE)
def test_what_the_spec_cannot_express_is_named(name: str) -> None:
    make, shape, message = INEXPRESSIBLE[name]
    with pytest.raises(UsageError, match=message):
        to_spec(make(), [(tuple(shape), "float32")], name)


def test_the_command_prints_the_spec_and_writes_it_with_o(cli, tmp_path: Path) -> None:
    target = "tests.reference_models:LeNet"
    printed = cli("import", target, "--allow-import", "--input", "1x1x32x32")
    assert printed.exit_code == 0 and printed.stdout.startswith("name: LeNet\n")
    out = tmp_path / "lenet.yaml"
    written = cli("import", target, "--allow-import", "--input", "1x1x32x32", "-o", str(out))
    assert written.exit_code == 0 and written.stdout == "" and out.read_text(encoding="utf-8") == printed.stdout
    again = cli("inspect", str(out))
    assert again.exit_code == 0 and "81,290" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tests.reference_models:LeNet", "-i", "1x1x32x32"], "names Python code, and importing it runs that code"),
        (["tests.reference_models:LeNet", "--allow-import"], "importing a model needs the shapes of its inputs"),
        (["configs/lenet.yaml", "--allow-import", "-i", "1x1x32x32"], "'configs/lenet.yaml' is not a Python model"),
        (["tests.python_models:TwoHeads", "--allow-import", "-i", "2x8"], "the model: returns a dict"),
        # torchvision's alexnet as zoo_twins builds it: a plain nn.Module holding the layers, no forward
        (
            ["tests.zoo_twins:alexnet", "--allow-import", "-i", "1x3x224x224"],
            "a Module without a forward of its own",
        ),
    ],
)
def test_the_command_fails_in_one_line(cli, args: list[str], message: str) -> None:
    run = cli("import", *args)
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and message in run.stderr


def test_o_replaces_nothing_but_a_regular_file(cli, tmp_path: Path) -> None:
    args = ["import", "tests.reference_models:LeNet", "--allow-import", "-i", "1x1x32x32", "-o"]
    run = cli(*args, str(tmp_path))
    assert run.exit_code == 2 and "is a directory; it was left as it is" in run.stderr
    source = tmp_path / "model.py"
    source.write_text("from tests.reference_models import LeNet\n", encoding="utf-8")
    run = cli("import", f"{source}:LeNet", "--allow-import", "-i", "1x1x32x32", "-o", str(source))
    assert run.exit_code == 2 and "is the code of the imported module" in run.stderr  # render/files.write_whole
    assert stat.S_ISREG(source.stat().st_mode) and "LeNet" in source.read_text(encoding="utf-8")


class ChannelNorm(nn.LayerNorm):
    """timm's LayerNorm2d: a LayerNorm over the channels of an image, holding its own weight."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class TinyViT(nn.Module):
    """A class token expanded over the batch, a position embedding, attention by
    F.scaled_dot_product_attention on split heads (timm's Attention), the class token's output."""

    def __init__(self, width: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, width, 4, 4)
        self.norm = ChannelNorm(width, eps=1e-6)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width))
        self.pos_embed = nn.Parameter(torch.randn(1, 17, width))
        self.qkv = nn.Linear(width, 3 * width)
        self.head = nn.Linear(width, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.patch(x)).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        x = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.head(x.transpose(1, 2).reshape(b, n, c)[:, 0])


def test_a_vit_with_its_own_layer_norm_and_attention_round_trips_and_computes_the_same() -> None:
    torch.manual_seed(0)
    model = TinyViT().eval()
    trip = round_trip(model, [[2, 3, 16, 16]], "TinyViT")
    assert trip.ok, trip.differences
    assert "op: functional_layer_norm, eps: 1.0e-06, from: [permute, weight, bias]" in trip.text
    assert "op: scaled_dot_product_attention" in trip.text and "op: expand, sizes: [2, -1, -1]" in trip.text
    ours = built(trip.text).eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), model(x))


def test_a_forward_fx_cannot_trace_is_written_from_its_recorded_calls_and_computes_the_same() -> None:
    """python_models.Gated branches on a value and loops over a size: its calls in order, the add and the
    cat of two layers' outputs, the flatten between cat and fc as a reshape, act and side called twice."""
    torch.manual_seed(0)
    model = python_models.Gated().eval()
    notes: list[str] = []
    text = to_spec(model, [((2, 3, 8, 8), "float32")], "Gated", notes=notes)
    assert notes == [
        "the model (Gated) was written from its recorded calls: torch.fx cannot trace its forward: "
        "symbolically traced variables cannot be used as inputs to control flow",
        "reshape: shape [2, 512] holds the sizes of the recorded run; the spec is for input 2x3x8x8, "
        "and keeps every layer's in-dim so another input fails",
    ]
    assert "{op: add, from: [act, side]}" in text and "{op: cat, dim: 1, from: [act_1, side_1]}" in text
    assert "{op: reshape, shape: [2, 512]}" in text and "{use: side, from: input}" in text
    trip = round_trip(model, [[2, 3, 8, 8]], "Gated")
    assert trip.ok, trip.differences
    ours = built(text).eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), model(x))


def test_a_container_inside_a_traced_model_falls_back_on_its_own() -> None:
    model = nn.Sequential(python_models.Gated(), nn.ReLU(), nn.Linear(10, 3))
    trip = round_trip(model, [[2, 3, 8, 8]], "nested")
    assert trip.ok, trip.differences
    assert "blocks:\n  Gated:\n" in trip.text and "- {op: Gated}\n- {op: ReLU}\n" in trip.text


def _materialised_fixed_hidden_mlp() -> nn.Module:
    model = ref.FixedHiddenMLP()
    model(torch.rand(2, 20))
    return model


REFUSED = {
    # `* 2` between bn's act and the add: no call shows it, the outputs differ
    "Doubled": (python_models.Doubled, (2, 3, 8, 8), "float32", "its output values"),
    # log_softmax of hidden2tag's output, in Python: the same
    "LSTMTagger": (ref.LSTMTagger, (5,), "int64", "its output values"),
    # the output is `X.sum()` of the last linear's, after a `while` on values
    "FixedHiddenMLP": (_materialised_fixed_hidden_mlp, (2, 20), "float32", r"its output: .* becomes \[\]"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_what_the_recorded_calls_do_not_show_is_refused_not_mis_imported(name: str) -> None:
    make, shape, dtype, why = REFUSED[name]
    model = make()
    with pytest.raises(
        UsageError,
        match=rf"^the model \({type(model).__name__}\): torch\.fx cannot trace its forward, "
        rf"and the recorded calls do not determine {why}",
    ):
        to_spec(model, [(shape, dtype)], name)


def test_the_command_notes_the_fallback_on_stderr_and_refuses_in_one_line(cli) -> None:
    run = cli("import", "tests.python_models:Gated", "--allow-import", "-i", "2x3x8x8")
    assert run.exit_code == 0 and run.stdout.startswith("name: Gated\n")
    assert run.stderr == (
        "note: the model (Gated) was written from its recorded calls: torch.fx cannot trace its forward: "
        "symbolically traced variables cannot be used as inputs to control flow\n"
        "note: reshape: shape [2, 512] holds the sizes of the recorded run; the spec is for input 2x3x8x8, "
        "and keeps every layer's in-dim so another input fails\n"
    )
    run = cli("import", "tests.python_models:Doubled", "--allow-import", "-i", "2x3x8x8")
    assert run.exit_code == 2 and run.stdout == "" and run.stderr.count("\n") == 1
    assert (
        "the model (Doubled): torch.fx cannot trace its forward, and the recorded calls do not determine" in run.stderr
    )


def test_falling_back_leaves_the_model_and_torch_as_they_were() -> None:
    model = python_models.Gated().train()
    before, rng = state(model), torch.random.get_rng_state()
    to_spec(model, [((2, 3, 8, 8), "float32")], "Gated")
    assert state(model) == before and model.training
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_a_model_that_rejects_its_input_is_told_as_inspect_tells_it(cli) -> None:
    args = ["tests.reference_models:LeNet", "--allow-import", "-i", "1x2x32x32"]
    imported, drawn = cli("import", *args), cli("graph", *args)
    assert imported.exit_code == drawn.exit_code == 1 and imported.stdout == ""
    assert imported.stderr == drawn.stderr and imported.stderr.count("\n") == 1
    assert "conv1 (Conv2d) does not accept its input" in imported.stderr


class _TiedInside(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


def test_a_shared_parameter_is_written_as_a_tie_and_counted_once() -> None:
    torch.manual_seed(0)
    model = python_import_models.Tied().eval()
    text = to_spec(model, [((2, 5), "int64")], "TiedLM")
    assert "tie: {weight: emb.weight}" in text
    spec = parse_model(load_documents(text, "<t>")[0], default_name="TiedLM")
    built = layerscope.build(spec).eval()
    unique = sum(p.numel() for p in model.parameters())  # torch's own count: each tensor once
    assert unique == 50 * 16 + 16 * 16 + 16 and sum(p.numel() for p in built.parameters()) == unique
    assert built.head.weight is built.emb.weight
    built.load_state_dict(model.state_dict(), strict=True)
    idx = torch.randint(0, 50, (2, 5))
    torch.testing.assert_close(built(idx), model(idx))


def test_a_tie_the_spec_cannot_write_is_refused_naming_it() -> None:
    model = nn.Sequential(_TiedInside(), _TiedInside())  # the tie inside a block, repeated
    with pytest.raises(UsageError, match=r"0\.b\.weight is the very tensor of 0\.a\.weight"):
        to_spec(model, [((2, 8), "float32")], "TiedInside")


def test_a_lost_tie_fails_the_check() -> None:
    from layerscope.importer.ties import check_ties

    untied = nn.Module()
    untied.a, untied.b = nn.Linear(8, 8), nn.Linear(8, 8)
    with pytest.raises(UsageError, match=r"a\.weight and b\.weight .*\(144 parameters against the model's 80\)"):
        check_ties(_TiedInside(), untied)


class _Scaled(nn.Module):
    """A non-persistent buffer (np.py's Norm): in no state_dict, so the spec must make its values."""

    def __init__(self, mean: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean, persistent=False)
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x * self.mean)


@pytest.mark.parametrize(("mean", "init"), [(torch.ones(1, 3, 1, 1), "init: ones, "), (torch.zeros(1, 3, 1, 1), "")])
def test_a_non_persistent_buffer_of_zeros_or_ones_is_made_by_its_init(mean: torch.Tensor, init: str) -> None:
    torch.manual_seed(0)
    model = _Scaled(mean).eval()
    text = to_spec(model, [((1, 3, 8, 8), "float32")], "Scaled")
    assert f"buffer: {{shape: [1, 3, 1, 1], {init}persistent: false}}" in text
    built = layerscope.build(parse_model(load_documents(text, "<s>")[0], default_name="Scaled")).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(built(x), model(x))


def test_a_non_persistent_buffer_no_init_makes_is_refused_naming_it() -> None:
    model = _Scaled(torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
    with pytest.raises(UsageError, match=r"mean: a non-persistent buffer, in no checkpoint, .* neither all zeros nor"):
        to_spec(model, [((1, 3, 8, 8), "float32")], "Scaled")


def test_a_size_read_in_the_forward_is_noted_and_another_input_fails(cli, tmp_path: Path) -> None:
    out = tmp_path / "v.yaml"
    run = cli("import", "tests.import_models:Viewed", "--allow-import", "-i", "2x3x8x8", "-o", str(out))
    assert run.exit_code == 0 and run.stderr.splitlines() == [
        f"note: {name}: shape {shape} holds the batch of 2 read in the forward; the spec is for input 2x3x8x8, "
        "and keeps every layer's in-dim so another input fails"
        for name, shape in (("reshape", [2, -1]), ("reshape_1", [2, 5, 1]))
    ]
    model = python_import_models.Viewed()
    unique = sum(p.numel() for p in model.parameters())  # torch's count: 4*3*3*3 + 4 + 144*5 + 5
    assert unique == 837 and "837" in cli("inspect", str(out)).stdout
    other = cli("inspect", str(out), "-i", "4x3x8x8")
    assert other.exit_code == 1 and "fc (Linear) does not accept its input" in other.stderr
    built = layerscope.build(out).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(built(x), model.eval()(x))
