"""Receptive fields: for each layer on a spatial path, how many input pixels (per spatial axis) one
output element sees, the step between neighbouring outputs' centres in input pixels (`jump`), and
where output element 0's field is centred (`start`, in input pixels, 0 the first pixel's centre).

The standard recurrences, per axis, over the data flow the run recorded (run/flow.py):
    r_out = r_in + (k − 1)·d·j_in,   j_out = j_in·s,   start_out = start_in + ((k − 1)/2·d − p)·j_in
for convolutions and pooling (1d/2d/3d, dilation and padding included; `padding="same"` pads
d·(k − 1)//2 before). A transposed convolution with stride 1 is a convolution padded d·(k − 1) − p;
with a larger stride it has no field here (its outputs do not step by whole input pixels).

Decided, and documented in the README:
- identity for activations, normalisation over channels (BatchNorm, GroupNorm, InstanceNorm,
  LocalResponseNorm, a LayerNorm over dim 1 of a channels-first tensor), dropout, nn.Identity and a
  spec's elementwise functional ops; padding layers shift `start` by the padding before. GroupNorm,
  InstanceNorm and LayerNorm take their statistics over the whole map of each sample, so strictly
  every pixel moves every output; as is usual, those statistics are not counted (BatchNorm in eval
  mode uses stored ones, so it is pointwise indeed);
- where paths meet (a spec's `add`/`cat`/`mul`, a join of Python code): the union of the fields —
  the largest for a ResNet, whose shortcut's field lies inside its main path's; `jump` the largest;
  a path without a field (a squeeze-excitation scale, a global context) is left out;
- no field (null) off the spatial path: after flatten, reshape, permute or a reduction (a spec's
  layer, or Python code between layers: a tensor that reaches a layer in another shape than its
  producer gave, pooled by `F.max_pool2d` in a forward too), for Linear,
  Embedding, attention, recurrent layers, global pooling (an adaptive pool to size 1), an adaptive
  pool whose output does not divide its input, and any layer type not named here;
- before the first convolution or pooling the field is one pixel, but how many axes are spatial is
  not known yet: null too;
- a container has its output's field, whichever layer in it made that output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from layerscope._torch_compat import AVGPOOL_BASE, BATCHNORM_BASE, CONV_BASE, MAXPOOL_BASE
from layerscope.report.model import Join, LayerRecord


@dataclass(frozen=True)
class Axis:
    r: int  # receptive field, input pixels
    j: int  # jump: input pixels between neighbouring outputs
    start: float  # centre of output 0's field, in input pixels


State = tuple[Axis, ...] | str | None  # per-axis fields; UNIT (the input: one pixel, axes unknown); None: no field
UNIT = "unit"

_POINTWISE_FUNCTIONAL = frozenset({"relu", "gelu", "silu", "sigmoid", "tanh", "contiguous", "add", "mul", "cat"})
_NOT_POINTWISE_ACTIVATIONS = (nn.MultiheadAttention, nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.GLU)
_INSTANCE_NORMS = (
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LazyInstanceNorm1d,
    nn.LazyInstanceNorm2d,
    nn.LazyInstanceNorm3d,
)


def _rank(module: nn.Module) -> int | None:
    """How many spatial axes a layer type works on: 2 for Conv2d, MaxPool2d, ZeroPad2d, a subclass of them."""
    for cls in type(module).__mro__:
        found = re.search(r"([123])d$", cls.__name__)
        if found:
            return int(found.group(1))
    return None


def _per_axis(value: Any, n: int) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _axes(state: State, n: int) -> tuple[Axis, ...] | None:
    """The state with `n` spatial axes: the input's one pixel becomes n axes; a different count, None."""
    if state == UNIT:
        return (Axis(1, 1, 0.0),) * n
    if isinstance(state, tuple) and len(state) == n:
        return state
    return None


def _window(state: State, n: int, kernel: Any, stride: Any, padding: Any, dilation: Any) -> State:
    """A sliding window (convolution, pooling) applied to `state`."""
    axes = _axes(state, n)
    if axes is None:
        return None
    ks, ss, ds = _per_axis(kernel, n), _per_axis(stride, n), _per_axis(dilation, n)
    if padding == "valid":
        padding = 0
    if padding == "same":
        ps: tuple[Any, ...] = tuple(d * (k - 1) // 2 for k, d in zip(ks, ds, strict=True))
    else:
        ps = _per_axis(padding, n)
    out = []
    for a, k, s, p, d in zip(axes, ks, ss, ps, ds, strict=True):
        out.append(Axis(a.r + (k - 1) * d * a.j, a.j * s, a.start + ((k - 1) / 2 * d - p) * a.j))
    return tuple(out)


def _conv(module: Any, state: State) -> State:
    n = len(module.kernel_size)
    if not getattr(module, "transposed", False):
        return _window(state, n, module.kernel_size, module.stride, module.padding, module.dilation)
    if any(s != 1 for s in module.stride) or isinstance(module.padding, str):
        return None
    padding = tuple(
        d * (k - 1) - p for k, d, p in zip(module.kernel_size, module.dilation, module.padding, strict=True)
    )
    return _window(state, n, module.kernel_size, 1, padding, module.dilation)


def _pool(module: Any, state: State, n: int) -> State:
    stride = module.stride if module.stride not in (None, ()) else module.kernel_size
    return _window(state, n, module.kernel_size, stride, module.padding, getattr(module, "dilation", 1))


def _adaptive(record: LayerRecord, state: State, n: int) -> State:
    """An adaptive pool is a plain one when its output divides its input; to size 1, global: no field."""
    if not (record.input_shapes and record.output_shapes):
        return None
    sizes_in, sizes_out = record.input_shapes[0][-n:], record.output_shapes[0][-n:]
    if sizes_in == sizes_out:
        return _axes(state, n)
    if all(o == 1 for o in sizes_out) or any(i % o for i, o in zip(sizes_in, sizes_out, strict=True)):
        return None
    kernel = tuple(i // o for i, o in zip(sizes_in, sizes_out, strict=True))
    return _window(state, n, kernel, kernel, 0, 1)


def _padded(module: Any, state: State, n: int) -> State:
    """ZeroPad2d and the like: `padding` is (left, right) per axis, the last axis first."""
    axes = _axes(state, n)
    padding = _per_axis(module.padding, 2 * n)
    if axes is None:
        return None
    return tuple(Axis(a.r, a.j, a.start - padding[2 * (n - 1 - i)] * a.j) for i, a in enumerate(axes))


def _pointwise(module: nn.Module, record: LayerRecord) -> bool:
    kind = type(module).__module__
    if isinstance(module, _NOT_POINTWISE_ACTIVATIONS):
        return False
    if kind.startswith(("torch.nn.modules.activation", "torch.nn.modules.dropout")):
        return True
    if isinstance(module, (BATCHNORM_BASE, nn.GroupNorm, nn.LocalResponseNorm, nn.Identity, *_INSTANCE_NORMS)):
        return True
    if isinstance(module, nn.LayerNorm):  # over the channels of N, C, ... only (torchvision's LayerNorm2d)
        shapes = record.input_shapes
        return len(module.normalized_shape) == 1 and bool(shapes) and len(shapes[0]) >= 3
    return False


def layer_state(module: nn.Module, record: LayerRecord, state: State) -> State:
    """The field after one leaf layer, from the field of what it took in."""
    if state is None:
        return None
    op = getattr(module, "op", None) if getattr(type(module), "functional", False) else None
    if op is not None:  # a spec's functional op
        kwargs = getattr(module, "kwargs", {})
        if op in _POINTWISE_FUNCTIONAL:
            return state
        if op in ("max_pool2d", "avg_pool2d"):
            stride = kwargs.get("stride") or kwargs["kernel_size"]
            args = (kwargs["kernel_size"], stride, kwargs.get("padding", 0), kwargs.get("dilation", 1))
            return _window(state, 2, *args)
        return _adaptive(record, state, 2) if op == "adaptive_avg_pool2d" else None
    n = _rank(module)
    if isinstance(module, CONV_BASE):
        return _conv(module, state)
    if isinstance(module, (MAXPOOL_BASE, AVGPOOL_BASE)) and n is not None:
        return _pool(module, state, n)
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)) or isinstance(
        module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
    ):
        return _adaptive(record, state, n) if n is not None else None
    if type(module).__module__ == "torch.nn.modules.padding" and n is not None:
        return _padded(module, state, n)
    return state if _pointwise(module, record) else None


def union(states: list[State]) -> State:
    """Paths meeting: per axis the smallest interval holding every field, `jump` the largest."""
    known = [s for s in states if s is not None]
    spatial = [s for s in known if isinstance(s, tuple)]
    if not spatial:
        return UNIT if known else None
    n = len(spatial[0])
    all_axes = [_axes(s, n) for s in known]
    if any(a is None for a in all_axes):
        return None
    out = []
    for i in range(n):
        column = [a[i] for a in all_axes if a is not None]
        lo = min(a.start - (a.r - 1) / 2 for a in column)
        hi = max(a.start + (a.r - 1) / 2 for a in column)
        out.append(Axis(round(hi - lo) + 1, max(a.j for a in column), (lo + hi) / 2))
    return tuple(out)


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def annotate(model: nn.Module, records: list[LayerRecord], joins: list[Join]) -> None:
    """Set each record's `receptive_field`, `jump` and `start` (per spatial axis; None off the spatial
    path), following `inputs_from` back to the model's inputs."""
    states: dict[str, State] = {}
    modules = dict(model.named_modules(remove_duplicate=False))  # every name a call can have (a spec's use:)

    def node(ref: str) -> LayerRecord | Join | None:
        """The call or join `ref` names (`layer:3`, `join:0`); None for an input."""
        kind, _, number = ref.partition(":")
        return joins[int(number)] if kind == "join" else records[int(number)] if kind == "layer" else None

    def inputs_of(ref: str) -> list[str | None]:
        found = node(ref)
        return list(found.inputs_from) if found is not None else []

    def taken(ref: str) -> list[State]:
        """The fields reaching `ref`: a producer's, or none where the tensor changed shape on the way
        (Python code between layers: `x.flatten(1)`, `.view`, `.mean(...)`, `F.max_pool2d`, which the
        flow passes through but no layer rule describes)."""
        found = node(ref)
        shapes = found.input_shapes if found is not None else []
        fields = []
        for k, producer in enumerate(inputs_of(ref)):
            if producer is None:
                continue
            maker = node(producer)
            reshaped = maker is not None and k < len(shapes) and shapes[k] not in maker.output_shapes
            fields.append(None if reshaped else states[producer])
        return fields

    def resolve(ref: str) -> State:
        """The field of node `ref`, its producers first (a stack, not recursion: nets run deep)."""
        stack = [ref]
        while stack:
            top = stack[-1]
            missing = [r for r in inputs_of(top) if r is not None and r not in states]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if top not in states:
                states[top] = _node_state(modules, records, top, taken(top))
        return states[ref]

    for record in records:
        state = resolve(record.outputs_from[0]) if record.outputs_from and record.outputs_from[0] else None
        if isinstance(state, tuple):
            record.receptive_field = [a.r for a in state]
            record.jump = [a.j for a in state]
            record.start = [_number(a.start) for a in state]


def _node_state(modules: dict[str, nn.Module], records: list[LayerRecord], ref: str, taken: list[State]) -> State:
    kind, _, number = ref.partition(":")
    if kind == "input":
        return UNIT
    met = taken[0] if len(taken) == 1 else union(taken)
    if kind == "join":
        return met
    record = records[int(number)]
    module = modules.get(record.name) if record.is_leaf else None
    return None if module is None else layer_state(module, record, met)
