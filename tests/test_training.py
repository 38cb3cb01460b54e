"""inspect --train against torch itself: what a real CPU training-mode forward saves for backward
(counted here with torch's saved-tensor hooks, independently of layerscope), the state a real
torch.optim step keeps, and the CPU's choice of attention kernel."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.graph import saved_tensors_hooks

import layerscope
from layerscope._torch_compat import cpu_fused_attention

from python_models import Classifier, Tagger
from reference_models import LeNet, LSTMTagger, TinyModel, bn_convnet, transformer_encoder
from tricky_models import CATALOGUE


def saved_by_a_real_forward(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> int:
    """Bytes autograd saves in a CPU training-mode forward of `model`: each storage once, by its
    address (every saved tensor is kept alive until the end, so no address is reused), leaving out
    the parameters', the buffers' and the inputs'."""
    kwargs = kwargs or {}
    model.train()
    held = [*model.parameters(), *model.buffers(), *args, *kwargs.values()]
    left_out = {t.untyped_storage().data_ptr() for t in held}
    storages: dict[int, int] = {}
    kept = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        kept.append(t)
        address = t.untyped_storage().data_ptr()
        if address not in left_out:
            storages[address] = t.untyped_storage().nbytes()
        return t

    with torch.enable_grad(), saved_tensors_hooks(pack, lambda t: t):
        model(*args, **kwargs)
    return sum(storages.values())


class TinyGPT(nn.Module):
    """A GPT-2-like model written directly in torch: causal self-attention by
    scaled_dot_product_attention (the CPU's fused kernel), GELU MLP, pre-norm residuals, tied head."""

    def __init__(self, vocab: int = 64, width: int = 32, heads: int = 4, depth: int = 2, context: int = 32):
        super().__init__()
        self.heads = heads
        self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "ln_1": nn.LayerNorm(width),
                    "qkv": nn.Linear(width, 3 * width),
                    "proj": nn.Linear(width, width),
                    "ln_2": nn.LayerNorm(width),
                    "fc": nn.Linear(width, 4 * width),
                    "out": nn.Linear(4 * width, width),
                }
            )
            for _ in range(depth)
        )
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.blocks:
            q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in b["qkv"](b["ln_1"](x)).chunk(3, -1))
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + b["proj"](attended.transpose(1, 2).flatten(-2))
            x = x + b["out"](F.gelu(b["fc"](b["ln_2"](x)), approximate="tanh"))
        return self.head(self.ln_f(x))


def frozen_lenet() -> nn.Module:
    model = LeNet()
    model.conv1.requires_grad_(False)  # its input is not saved: no weight gradient needs it
    return model


MODELS = {
    "lenet": (LeNet, lambda: (torch.randn(1, 1, 32, 32),)),
    "lenet, conv1 frozen": (frozen_lenet, lambda: (torch.randn(1, 1, 32, 32),)),
    "tinymodel": (TinyModel, lambda: (torch.randn(1, 100),)),
    "batchnorm convnet": (bn_convnet, lambda: (torch.randn(2, 3, 32, 32),)),
    "lstm tagger": (LSTMTagger, lambda: (torch.randint(0, 9, (5,)),)),
    "transformer encoder": (transformer_encoder, lambda: (torch.randn(6, 2, 512),)),
    "tiny gpt": (TinyGPT, lambda: (torch.randint(0, 64, (2, 16)),)),
    "python classifier": (Classifier, lambda: (torch.randn(2, 3, 32, 32),)),
    "python tagger": (Tagger, lambda: (torch.randint(0, 100, (2, 7)),)),
}


def made(name: str) -> tuple[nn.Module, tuple[Any, ...]]:
    torch.manual_seed(0)
    factory, inputs = MODELS[name]
    return factory(), inputs()


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name", list(MODELS))
def test_saved_activations_are_what_a_real_cpu_forward_saves(name: str, device: str) -> None:
    if name == "lstm tagger" and device == "meta":
        pytest.skip("meta counts torch's step-by-step LSTM; the CPU runs oneDNN's kernel (a note says so)")
    model, args = made(name)
    report = layerscope.inspect(model, inputs=args, device=device, train=True)
    expected = saved_by_a_real_forward(model, args)
    assert report.device == device and report.train_memory is not None
    assert report.train_memory.activations_bytes == expected > 0
    assert report.layers[0].saved_bytes == expected  # the model's own call holds the whole forward


def test_on_meta_a_recurrent_layer_is_said_to_be_counted_another_way() -> None:
    model, args = made("lstm tagger")
    report = layerscope.inspect(model, inputs=args, device="meta", train=True)
    assert any("oneDNN" in note.message for note in report.notes)


@pytest.mark.parametrize(("spec", "twin", "inputs"), [
    ("lenet", LeNet, lambda: (torch.randn(1, 1, 32, 32),)),
    ("tinymodel", TinyModel, lambda: (torch.randn(1, 100),)),
    ("lstm_tagger", LSTMTagger, lambda: (torch.randint(0, 9, (5,)),)),
])  # fmt: skip
@pytest.mark.parametrize("device", ["auto", "meta"])
def test_a_spec_saves_what_its_torch_twin_saves(spec: str, twin: Any, inputs: Any, device: str) -> None:
    if spec == "lstm_tagger" and device == "meta":
        pytest.skip("meta counts torch's step-by-step LSTM; the CPU runs oneDNN's kernel")
    report = layerscope.inspect(spec, device=device, train=True)
    assert report.train_memory is not None
    assert report.train_memory.activations_bytes == saved_by_a_real_forward(twin(), inputs())


def test_a_gpt2_spec_saves_what_the_cpu_saves_on_meta_too() -> None:
    """Attention on meta takes the math path, which saves the attention matrices; the CPU's fused
    kernel does not, and the figure is the CPU's on either device."""
    spec = layerscope.load("gpt2", vocab=97, context=32, width=48, heads=4, depth=2, tokens=24)
    model = layerscope.build(spec)
    expected = saved_by_a_real_forward(model, (torch.randint(0, 97, (1, 24)),))
    on_cpu = layerscope.inspect(spec, device="cpu", train=True).train_memory
    on_meta = layerscope.inspect(spec, device="meta", train=True).train_memory
    assert on_cpu is not None and on_meta is not None
    assert on_cpu.activations_bytes == on_meta.activations_bytes == expected


def test_a_transformers_gpt2_saves_what_a_real_cpu_forward_saves() -> None:
    """A library's model, its attention by scaled_dot_product_attention (on meta it stops at an
    `.item()`, before any training memory: the CPU only)."""
    hf_models = pytest.importorskip("hf_models")
    factory, inputs = hf_models.MODELS["gpt2"]
    model, kwargs = factory(), inputs()
    expected = saved_by_a_real_forward(model, (), kwargs)
    report = layerscope.inspect(model, inputs=kwargs, device="cpu", train=True)
    assert report.train_memory is not None and report.train_memory.activations_bytes == expected


ATTENTION = [  # q, k, v shapes, and what else the call passes
    ((1, 4, 16, 8), (1, 4, 16, 8), (1, 4, 16, 8), {}),
    ((1, 4, 16, 8), (1, 4, 16, 8), (1, 4, 16, 8), {"is_causal": True}),
    ((1, 4, 16, 8), (1, 4, 16, 8), (1, 4, 16, 8), {"dropout_p": 0.1}),
    ((1, 4, 16, 8), (1, 4, 16, 8), (1, 4, 16, 8), {"attn_mask": torch.zeros(16, 16)}),
    ((1, 4, 16, 8), (1, 4, 16, 8), (1, 4, 16, 8), {"attn_mask": torch.ones(16, 16, dtype=torch.bool)}),
    ((1, 4, 16, 8), (1, 4, 16, 8), (1, 4, 16, 8), {"attn_mask": torch.zeros(2, 1, 16, 16)}),
    ((4, 16, 8), (4, 16, 8), (4, 16, 8), {}),
    ((1, 4, 16, 8), (1, 4, 16, 8), (1, 4, 16, 4), {}),
    ((1, 4, 16, 8), (1, 2, 16, 8), (1, 2, 16, 8), {"enable_gqa": True}),
    ((1, 4, 10, 8), (1, 4, 16, 8), (1, 4, 16, 8), {}),
    ((2, 4, 16, 8), (1, 4, 16, 8), (1, 4, 16, 8), {}),
]


@pytest.mark.parametrize(("q", "k", "v", "more"), ATTENTION)
def test_the_cpus_attention_kernel_is_chosen_as_the_cpu_chooses_it(q: Any, k: Any, v: Any, more: Any) -> None:
    from torch.nn.attention import SDPBackend

    tensors = [torch.randn(s, requires_grad=True) for s in (q, k, v)]
    options = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, **more}
    try:
        fused = torch._fused_sdp_choice(*tensors, **options) == SDPBackend.FLASH_ATTENTION.value
    except RuntimeError:  # shapes no kernel takes
        fused = False
    on_meta = {key: value.to("meta") if isinstance(value, torch.Tensor) else value for key, value in more.items()}
    modelled = cpu_fused_attention(*(t.detach().to("meta") for t in tensors), **on_meta)
    assert (modelled is not None) == fused


class Frozen(nn.Module):
    """A frozen backbone, a trainable head, and a tied pair: no gradient or state for the first, one for the last."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU()).requires_grad_(False)
        self.mid = nn.Linear(16, 16)
        self.head = nn.Linear(16, 16)
        self.head.weight = self.mid.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mid(self.backbone(x)).relu())


@pytest.mark.parametrize(("optimizer", "momentum", "make"), [
    ("adam", None, lambda ps: torch.optim.Adam(ps)),
    ("adamw", None, lambda ps: torch.optim.AdamW(ps)),
    ("sgd", 0.9, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
    ("sgd", None, lambda ps: torch.optim.SGD(ps, lr=0.1)),
])  # fmt: skip
def test_gradients_and_optimizer_state_are_what_a_real_torch_step_keeps(
    optimizer: str, momentum: float | None, make: Any
) -> None:
    torch.manual_seed(0)
    model, x = Frozen(), torch.randn(4, 8)
    memory = layerscope.inspect(model, inputs=x, train=True, optimizer=optimizer, momentum=momentum).train_memory
    step = make([p for p in model.parameters() if p.requires_grad])
    model(x).sum().backward()
    step.step()
    grads = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
    state = sum(t.nbytes for s in step.state.values() for t in s.values() if isinstance(t, torch.Tensor))
    params = sum(p.nbytes for p in model.parameters())
    assert memory is not None
    assert (memory.params_bytes, memory.grads_bytes, memory.optimizer_bytes) == (params, grads, state)
    assert memory.total_bytes == params + grads + state + memory.activations_bytes


class FreezesInTrain(nn.Module):
    """Its train() freezes the first layer (as detection models' `_freeze_stages` do): a training step
    keeps no gradient or optimizer state for it, though it requires grad until train() is called."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.head = nn.Linear(8, 4), nn.Linear(4, 4)

    def train(self, mode: bool = True) -> FreezesInTrain:
        super().train(mode)
        self.stem.requires_grad_(not mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.stem(x)))


def test_what_trains_is_what_requires_grad_after_train() -> None:
    model, x = FreezesInTrain().eval(), torch.randn(3, 8)
    memory = layerscope.inspect(model, inputs=x, train=True).train_memory
    assert not model.training and model.stem.weight.requires_grad  # left as it was
    model.train()
    step = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    model(x).sum().backward()
    step.step()
    assert memory is not None
    assert memory.grads_bytes == sum(p.grad.nbytes for p in model.parameters() if p.grad is not None) == 80
    assert memory.optimizer_bytes == sum(t.nbytes for s in step.state.values() for t in s.values()) == 168


def test_the_json_section(cli: Any) -> None:
    done = cli("inspect", "lenet", "--train", "--optimizer", "sgd", "--momentum", "0.9", "--format", "json")
    data = json.loads(done.stdout)
    memory = data["train_memory"]
    assert set(memory) == {
        *("optimizer", "momentum", "params_bytes", "grads_bytes"),
        *("optimizer_bytes", "activations_bytes", "total_bytes"),
    }
    assert (memory["optimizer"], memory["momentum"]) == ("sgd", 0.9)
    assert memory["params_bytes"] == memory["grads_bytes"] == memory["optimizer_bytes"] == data["param_bytes"]
    assert memory["activations_bytes"] == saved_by_a_real_forward(LeNet(), (torch.randn(1, 1, 32, 32),))
    assert all("saved_bytes" in layer for layer in data["layers"])
    without = json.loads(cli("inspect", "lenet", "--format", "json").stdout)
    assert "train_memory" not in without and not any("saved_bytes" in layer for layer in without["layers"])


@pytest.mark.parametrize(("args", "says"), [
    (["--train", "--optimizer", "rmsprop"], "--optimizer 'rmsprop' is not one layerscope counts — use sgd, adam or adamw"),
    (["--train", "--momentum", "0.9"], "--momentum is sgd's; adam keeps no momentum buffer"),
    (["--optimizer", "sgd"], "--optimizer is for training memory — add --train"),
    (["--momentum", "0.9"], "--momentum is for training memory — add --train"),
    (["--train", "--optimizer", "sgd", "--momentum", "nan"], "--momentum nan: must be a finite number, 0 or more"),
    (["--train", "--optimizer", "sgd", "--momentum", "-1"], "--momentum -1.0: must be a finite number, 0 or more"),
])  # fmt: skip
def test_a_wrong_training_option_is_one_line_and_exit_2(cli: Any, args: list[str], says: str) -> None:
    done = cli("inspect", "lenet", *args)
    assert done.exit_code == 2
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1 and says in done.stderr


def test_a_70b_spec_trains_on_meta() -> None:
    report = layerscope.inspect("llama2_70b", train=True)
    memory = report.train_memory
    assert report.device == "meta" and memory is not None
    assert memory.grads_bytes == memory.params_bytes == report.param_bytes
    assert memory.activations_bytes > 0 and memory.total_bytes > 4 * memory.params_bytes


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_tricky_models_save_what_their_own_forward_saves(name: str) -> None:
    """Models that write their weights, refuse copies, hold scripted parts, flip requires_grad in
    `train()`: on the CPU the figure is their own training forward's."""
    factory, make_inputs = CATALOGUE[name]
    args, kwargs = make_inputs()
    torch.manual_seed(1)
    report = layerscope.inspect(factory(), inputs=args, kwargs=kwargs, device="cpu", train=True)
    torch.manual_seed(1)
    expected = saved_by_a_real_forward(factory(), tuple(a.clone() for a in args), dict(kwargs))
    assert report.train_memory is not None and report.train_memory.activations_bytes == expected


SMALL_GPT2 = {"vocab": 97, "context": 32, "width": 48, "heads": 4, "depth": 2, "tokens": 24}
DTYPE_CASES = {
    "bn_convnet": ({}, lambda dtype: torch.randn(1, 3, 32, 32, dtype=dtype)),
    "gpt2": (SMALL_GPT2, lambda dtype: torch.randint(0, 97, (1, 24))),
}


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64"])
@pytest.mark.parametrize("device", ["auto", "meta"])
@pytest.mark.parametrize("config", list(DTYPE_CASES))
def test_with_dtype_the_figure_is_that_dtypes_real_forward(config: str, device: str, dtype: str) -> None:
    """Meta keeps BatchNorm's and LayerNorm's saved statistics in float32 for half-precision inputs,
    the CPU in the input's dtype: the figure is the CPU's."""
    settings, make_input = DTYPE_CASES[config]
    spec = layerscope.load(config, **settings)
    model = layerscope.build(spec, dtype=dtype)
    memory = layerscope.inspect(spec, device=device, dtype=dtype, train=True).train_memory
    assert memory is not None
    assert memory.activations_bytes == saved_by_a_real_forward(model, (make_input(getattr(torch, dtype)),))
    assert memory.params_bytes == sum(p.nbytes for p in model.parameters())


def test_a_python_model_on_the_command_line(cli: Any) -> None:
    done = cli(
        "inspect", "tests.python_models:Classifier", "--allow-import", "-i", "2x3x32x32", "--train", "--format", "json"
    )
    assert done.exit_code == 0, done.stderr
    memory = json.loads(done.stdout)["train_memory"]
    torch.manual_seed(0)
    expected = saved_by_a_real_forward(Classifier(), (torch.randn(2, 3, 32, 32),))
    assert memory["activations_bytes"] == expected


@pytest.mark.parametrize(
    "config",
    [
        *("bn_convnet", "chimera", "classifier", "convnet", "exercise_convnet", "fixed_hidden_mlp", "lazy_mlp"),
        *("nest_mlp", "three_layer_mlp", "tied_mlp", "transformer_encoder", "resnet18", "bert_base"),
    ],
)
def test_every_bundled_spec_saves_the_same_on_meta_as_on_the_cpu(config: str) -> None:
    on_cpu = layerscope.inspect(config, device="cpu", train=True).train_memory
    on_meta = layerscope.inspect(config, device="meta", train=True).train_memory
    assert on_cpu is not None and on_meta is not None
    assert on_cpu.activations_bytes == on_meta.activations_bytes


class Attend(nn.Module):
    """One scaled_dot_product_attention of q, k and v made from parameters (so autograd saves what
    their gradients need), its mask a buffer."""

    def __init__(self, q: Any, k: Any, v: Any, more: dict[str, Any]):
        super().__init__()
        self.q, self.k, self.v = (nn.Parameter(torch.randn(shape)) for shape in (q, k, v))
        self.more = {key: value for key, value in more.items() if key != "attn_mask"}
        self.register_buffer("mask", more.get("attn_mask"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(self.q * x, self.k * x, self.v * x, attn_mask=self.mask, **self.more)


@pytest.mark.parametrize(("q", "k", "v", "more"), ATTENTION)
def test_attention_saves_on_meta_what_it_saves_on_the_cpu(q: Any, k: Any, v: Any, more: Any) -> None:
    """Each case, fused or not, as the CPU runs it, counted on meta and in a real CPU forward."""
    model, x = Attend(q, k, v, more), torch.ones(())
    try:
        expected = saved_by_a_real_forward(model, (x,))
    except RuntimeError:
        pytest.skip("shapes the CPU refuses")
    on_meta = layerscope.inspect(model, inputs=x, device="meta", train=True).train_memory
    assert on_meta is not None and on_meta.activations_bytes == expected
