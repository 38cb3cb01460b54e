"""run.counting.OpCounter: its shape-only answers on meta equal the meta kernels', and its FLOPs torch's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from layerscope import _torch_compat
from layerscope.run.counting import SHORTCUTS, OpCounter

aten = torch.ops.aten
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def cases(dt: torch.dtype) -> list[tuple[Any, ...]]:
    """(op, args) or (op, args, kwargs) for every shortcut, in the forms models call them."""
    x, y, v = meta(2, 8, 5, 5, dtype=dt), meta(2, 3, 8, dtype=dt), meta(8, dtype=dt)
    a, b = meta(6, 8, dtype=dt), meta(8, 4, dtype=dt)
    unary = [op for op, f in SHORTCUTS.items() if f.__name__ in ("_like_first", "_first_in_place")]
    return [
        *[(op, (y,)) for op in unary],
        (aten.gelu.default, (y,)),
        (aten.gelu.default, (y,), {"approximate": "tanh"}),
        (aten.tril.default, (y,)),
        (aten.triu.default, (y, 1)),
        *[(op, (y, y)) for op in (aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor)],
        *[(op, (y, 2)) for op in (aten.add.Tensor, aten.mul.Tensor, aten.add.Scalar, aten.mul.Scalar)],
        (aten.div.Scalar, (y, 0.5)),
        (aten.pow.Tensor_Scalar, (y, 2)),
        *[(op, (y, y)) for op in (aten.add_.Tensor, aten.sub_.Tensor, aten.mul_.Tensor, aten.div_.Tensor)],
        (aten._safe_softmax.default, (y, -1)),
        (aten._safe_softmax.default, (y, 1, dt)),
        (aten.native_batch_norm.default, (x, v, v, v, v, False, 0.1, 1e-5)),
        (aten.native_batch_norm.default, (x, None, None, None, None, True, 0.1, 1e-5)),
        (aten._native_batch_norm_legit_no_training.default, (x, v, v, v, v, 0.1, 1e-5)),
        (aten.native_layer_norm.default, (y, [8], v, v, 1e-5)),
        (aten.native_layer_norm.default, (y, [3, 8], None, None, 1e-5)),
        (aten.mm.default, (a, b)),
        (aten.addmm.default, (meta(4, dtype=dt), a, b)),
        (aten.addmm.default, (meta(6, 4, dtype=dt), a, b)),
        (aten.bmm.default, (meta(3, 6, 8, dtype=dt), meta(3, 8, 4, dtype=dt))),
        # transposed operands, as a Linear (weight.t()) and attention (keys transposed) pass them
        (aten.mm.default, (a, meta(4, 8, dtype=dt).t())),
        (aten.mm.default, (meta(8, 6, dtype=dt).t(), b)),
        (aten.addmm.default, (meta(4, dtype=dt), a, meta(4, 8, dtype=dt).t())),
        (aten.bmm.default, (meta(3, 6, 8, dtype=dt), meta(3, 4, 8, dtype=dt).transpose(1, 2))),
    ]


def metadata(value: Any) -> Any:
    if isinstance(value, Tensor):
        return (tuple(value.shape), value.stride(), value.dtype, value.device.type)
    return tuple(metadata(v) for v in value)


def fresh(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """New tensors for each call: in-place ops must not see each other's results."""
    return tuple(torch.empty_like(a) if isinstance(a, Tensor) else a for a in args)


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_every_shortcut_gives_what_the_meta_kernel_gives(dt: torch.dtype) -> None:
    covered = set()
    for op, args, *kwargs in cases(dt):
        options = kwargs[0] if kwargs else {}
        answer = SHORTCUTS[op](*fresh(args), **options)
        assert answer is not NotImplemented, op
        assert metadata(answer) == metadata(op(*fresh(args), **options)), op
        covered.add(op)
    assert covered == set(SHORTCUTS)


def test_in_place_shortcuts_return_their_input() -> None:
    y = meta(2, 3)
    assert SHORTCUTS[aten.relu_.default](y) is y
    assert SHORTCUTS[aten.add_.Tensor](y, 1.0) is y


# inputs a shortcut must not answer: the real kernel runs, and fails with torch's message where it fails
DECLINED: list[tuple[Any, ...]] = [
    (aten.relu.default, (torch.empty(2, 3),)),  # not meta
    (aten.relu.default, (torch.empty(2, 3, dtype=torch.int64, device="meta"),)),  # not floating
    (aten.relu.default, (meta(3, 2).t(),)),  # not contiguous
    (aten.add.Tensor, (meta(2, 3), meta(3))),  # broadcasting
    (aten.add.Tensor, (meta(2, 3), meta(2, 3, dtype=torch.float64))),  # type promotion
    (aten.tril.default, (meta(3),)),  # needs a matrix
    (aten.gelu.default, (meta(3),), {"approximate": "bogus"}),
    (aten._safe_softmax.default, (meta(2, 3), 2)),  # no such dim
    (aten._safe_softmax.default, (meta(2, 3), 1, torch.float64)),  # casts
    (aten.native_batch_norm.default, (meta(2, 8, 5), meta(4), None, None, None, True, 0.1, 1e-5)),
    (aten.native_layer_norm.default, (meta(2, 3, 8), [4], None, None, 1e-5)),
    (aten.mm.default, (meta(6, 8), meta(7, 4))),
    (aten.addmm.default, (meta(5), meta(6, 8), meta(8, 4))),
    (aten.bmm.default, (meta(3, 6, 8), meta(2, 8, 4))),
]


@pytest.mark.parametrize("case", DECLINED, ids=[f"{case[0]}-{i}" for i, case in enumerate(DECLINED)])
def test_shortcuts_decline_what_they_cannot_answer_exactly(case: tuple[Any, ...]) -> None:
    op, args, *kwargs = case
    assert SHORTCUTS[op](*args, **(kwargs[0] if kwargs else {})) is NotImplemented


def test_a_wrong_input_fails_with_torchs_own_message_under_the_counter() -> None:
    x, w = meta(6, 8), meta(7, 4)
    with pytest.raises(RuntimeError) as direct:
        torch.mm(x, w)
    with pytest.raises(RuntimeError) as counted, OpCounter():
        torch.mm(x, w)
    assert str(counted.value) == str(direct.value)


def forward(device: str) -> Callable[[], Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(inplace=True),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 10),
        torch.nn.LayerNorm(10),
        torch.nn.GELU(),
    ).eval()
    model = model.to_empty(device=device) if device == "meta" else model
    x = torch.empty(2, 3, 6, 6, device=device)
    return lambda: model(x)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_flops_equal_flop_counter_modes(device: str) -> None:
    run = forward(device)
    with torch.no_grad(), FlopCounterMode(display=False) as theirs:
        run()
    with torch.no_grad(), OpCounter() as ours:
        out = run()
    assert ours.flops == theirs.get_total_flops() > 0
    assert out.shape == (2, 10)


def test_the_cpus_fused_attention_counts_as_its_two_matmuls() -> None:
    q = torch.randn(1, 4, 16, 8)
    with torch.no_grad(), OpCounter() as on_cpu:
        F.scaled_dot_product_attention(q, q, q)
    with torch.no_grad(), OpCounter() as on_meta:
        F.scaled_dot_product_attention(*[q.to("meta")] * 3)
    assert on_cpu.flops == on_meta.flops == 2 * (2 * 4 * 16 * 16 * 8)


class _Spy(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.seen.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def test_no_initialiser_runs_while_a_module_is_built() -> None:
    with _Spy() as spy, torch.device("meta"), _torch_compat.no_init():
        torch.nn.Linear(4, 5)
        torch.nn.Embedding(10, 4)
        torch.nn.LSTM(4, 8)
        torch.nn.BatchNorm2d(3)
    with _Spy() as unguarded, torch.device("meta"):
        torch.nn.Linear(4, 5)
    initialisers = {"kaiming_uniform_", "uniform_", "normal_", "ones_", "zeros_", "zero_", "fill_"}
    assert initialisers & set(unguarded.seen)  # the spy does see them when they run
    assert not initialisers & set(spy.seen)


class _Names(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


def test_resnet_style_blocks_on_meta_run_no_python_batch_norm() -> None:
    """The point of the shortcuts: eval-mode BatchNorm on meta is answered, not decomposed."""
    run = forward("meta")
    with torch.no_grad(), _Names() as below, OpCounter():  # what the counter does not answer reaches `below`
        run()
    assert "aten.convolution.default" in below.ops
    assert not {"aten.native_batch_norm.default", "aten.relu_.default", "aten.native_layer_norm.default"} & set(
        below.ops
    )


def test_no_initialiser_runs_while_a_spec_with_lazy_layers_is_built() -> None:
    """LazyLinear makes its weights on its first call, inside the builder: uninitialised too."""
    from layerscope.builder.builder import build
    from layerscope.spec.model import load_spec

    from conftest import ROOT

    with _Spy() as spy:
        built = build(load_spec(ROOT / "configs" / "lazy_mlp.yaml"), device="cpu")
    assert sum(p.numel() for p in built.model.parameters()) == 20 * 256 + 256 + 256 * 10 + 10
    assert not {"kaiming_uniform_", "uniform_"} & set(spy.seen)


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU, nn.RNN])
def test_recurrent_layers_on_meta_are_answered_by_shape_as_the_cpu_runs_them(kind: type) -> None:
    """run/meta_rnn.py: every layout, depth, direction, projection, bias, unbatched input and given
    state gives the CPU's output shapes and FLOPs; a wrong input or state fails with torch's message."""
    import itertools

    import layerscope

    for layers, bi, first, proj, bias, unbatched, state in itertools.product(
        [1, 2], [False, True], [False, True], [0, 3], [True, False], [False, True], [False, True]
    ):
        if proj and kind is not nn.LSTM:
            continue
        model = kind(
            6,
            5,
            num_layers=layers,
            bidirectional=bi,
            batch_first=first,
            bias=bias,
            **({"proj_size": proj} if proj else {}),
        )
        x = torch.randn(7, 6) if unbatched else torch.randn(2, 7, 6) if first else torch.randn(7, 2, 6)
        args: list = [x]
        if state:
            rows, out = (2 if bi else 1) * layers, proj or 5
            h = torch.zeros((rows, out) if unbatched else (rows, 2, out))
            c = torch.zeros((rows, 5) if unbatched else (rows, 2, 5))
            args.append((h, c) if kind is nn.LSTM else h)
        on_cpu = layerscope.inspect(model, inputs=args, device="cpu")
        on_meta = layerscope.inspect(model, inputs=args, device="meta")
        assert (on_meta.total_flops, on_meta.output_shapes) == (on_cpu.total_flops, on_cpu.output_shapes)
        assert on_cpu.failure is None and on_meta.failure is None
    model = kind(6, 5)
    for args in ([torch.randn(7, 2, 5)], [torch.randn(7, 2, 6), torch.zeros(1, 3, 5)]):
        if kind is nn.LSTM and len(args) == 2:
            args[1] = (args[1], torch.zeros(1, 3, 5))
        on_cpu = layerscope.inspect(model, inputs=args, device="cpu").failure
        on_meta = layerscope.inspect(model, inputs=args, device="meta").failure
        assert on_cpu is not None and on_meta is not None and on_meta.error == on_cpu.error
