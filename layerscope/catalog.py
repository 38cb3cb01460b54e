"""What an op name in a spec means: a torch.nn class or a functional op, its signature, and
which of its arguments can be inferred from the traced input shape."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from torch import nn

from layerscope.ops import FUNCTIONAL_OPS

# Classes that are not layers: they have no forward of their own.
_NOT_LAYERS = {"Module", "Container", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
# Classes whose __init__ is (*args, **kwargs); these are their real parameters.
_RNN_PARAMS = "input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False"
_SIGNATURE_OVERRIDES = {
    "LSTM": f"{_RNN_PARAMS}, proj_size=0",
    "GRU": _RNN_PARAMS,
    "RNN": "input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False, dropout=0.0, bidirectional=False",
    "Identity": "",
    "Sigmoid": "",
    "Tanh": "",
    "LogSigmoid": "",
    "Softsign": "",
    "Tanhshrink": "",
    "Softmax2d": "",
}
# Set by layerscope itself, never by a spec.
_RESERVED_ARGS = ("device", "dtype")


@dataclass(frozen=True)
class Inference:
    """An in-dim argument and how to read it off the input shape."""

    arg: str
    read: Callable[[Sequence[int]], Any]
    describe: str


def _last(shape: Sequence[int]) -> int:
    return shape[-1]


def _dim1(shape: Sequence[int]) -> int:
    return shape[1]


def _channels(spatial: int) -> Callable[[Sequence[int]], int]:
    # ConvNd takes (N, C, *spatial) or unbatched (C, *spatial): C is spatial+1 from the end
    return lambda shape: shape[-(spatial + 1)]


INFERENCES: dict[str, Inference] = {
    "Linear": Inference("in_features", _last, "last dim"),
    "LayerNorm": Inference("normalized_shape", _last, "last dim"),
    "RMSNorm": Inference("normalized_shape", _last, "last dim"),
    "LSTM": Inference("input_size", _last, "last dim"),
    "GRU": Inference("input_size", _last, "last dim"),
    "RNN": Inference("input_size", _last, "last dim"),
    "LSTMCell": Inference("input_size", _last, "last dim"),
    "GRUCell": Inference("input_size", _last, "last dim"),
    "RNNCell": Inference("input_size", _last, "last dim"),
    "GroupNorm": Inference("num_channels", _dim1, "dim 1"),
    **{f"BatchNorm{n}d": Inference("num_features", _dim1, "dim 1") for n in (1, 2, 3)},
    **{f"InstanceNorm{n}d": Inference("num_features", _dim1, "dim 1") for n in (1, 2, 3)},
    **{f"Conv{n}d": Inference("in_channels", _channels(n), "channel dim") for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": Inference("in_channels", _channels(n), "channel dim") for n in (1, 2, 3)},
}


@dataclass(frozen=True)
class OpInfo:
    """A resolved op: what to construct and which arguments it accepts."""

    name: str
    kind: str  # "module" (a torch.nn class) or "functional"
    target: Any
    signature: inspect.Signature
    inference: Inference | None

    @property
    def usage(self) -> str:
        """The call as a spec writes it: Linear(in_features, out_features, bias=True)."""
        params = [
            p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in self.signature.parameters.values()
        ]
        return f"{self.name}({', '.join(params)})"

    @property
    def is_lazy(self) -> bool:
        return self.kind == "module" and issubclass(self.target, nn.modules.lazy.LazyModuleMixin)


@cache
def module_class_names() -> tuple[str, ...]:
    """Every torch.nn class usable as a layer."""
    return tuple(
        sorted(
            n
            for n in dir(nn)
            if isinstance(getattr(nn, n), type) and issubclass(getattr(nn, n), nn.Module) and n not in _NOT_LAYERS
        )
    )


def op_names() -> list[str]:
    """Every op name a spec may use (blocks aside)."""
    return [*module_class_names(), *FUNCTIONAL_OPS]


def _signature_from_text(params: str) -> inspect.Signature:
    scope: dict[str, Any] = {}
    exec(f"def f({params}): pass", scope)  # noqa: S102 - a constant from this module, never spec text
    return inspect.signature(scope["f"])


@cache
def lookup(op: str) -> OpInfo | None:
    """The op named `op`, or None when it is not a layer type."""
    if op in FUNCTIONAL_OPS:
        sig = inspect.signature(FUNCTIONAL_OPS[op])
        # the first parameter takes the tensor(s) from `from:`; the rest are the spec's arguments
        params = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in list(sig.parameters.values())[1:]]
        return OpInfo(op, "functional", FUNCTIONAL_OPS[op], sig.replace(parameters=params), None)
    if op not in module_class_names():
        return None
    cls = getattr(nn, op)
    if op in _SIGNATURE_OVERRIDES:
        sig = _signature_from_text(_SIGNATURE_OVERRIDES[op])
    else:
        sig = inspect.signature(cls)
        sig = sig.replace(parameters=[p for n, p in sig.parameters.items() if n not in _RESERVED_ARGS])
    return OpInfo(op, "module", cls, sig, INFERENCES.get(op))


def reserved_args() -> tuple[str, ...]:
    """Constructor arguments a spec may not set."""
    return _RESERVED_ARGS
