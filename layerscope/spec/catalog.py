"""What an op name in a spec means: a torch.nn class or a functional op, its signature, and
which of its arguments can be inferred from the traced input shape."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from torch import nn

from layerscope.spec.ops import FUNCTIONAL_OPS, LAYERSCOPE_MODULES

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
RESERVED_ARGS = ("device", "dtype")


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
    "ClassToken": Inference("embed_dim", _last, "last dim"),
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
    return [*module_class_names(), *LAYERSCOPE_MODULES, *FUNCTIONAL_OPS]


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
    if op in LAYERSCOPE_MODULES:
        cls: type[nn.Module] = LAYERSCOPE_MODULES[op]
    elif op in module_class_names():
        cls = getattr(nn, op)
    else:
        return None
    if op in _SIGNATURE_OVERRIDES:
        sig = _signature_from_text(_SIGNATURE_OVERRIDES[op])
    else:
        sig = inspect.signature(cls)
        sig = sig.replace(parameters=[p for n, p in sig.parameters.items() if n not in RESERVED_ARGS])
    return OpInfo(op, "module", cls, sig, INFERENCES.get(op))


# What people call an op in other libraries and papers → its name here: unknown ops are suggested
# by meaning first, then by spelling. Keys are lower case without _ (see `synonym`).
SYNONYMS = {
    **dict.fromkeys(("mm", "bmm", "einsum", "dot", "matmult", "matrixmultiply"), "matmul"),
    **dict.fromkeys(("dense", "fc", "fullyconnected", "affine", "linearlayer"), "Linear"),
    **dict.fromkeys(("conv", "convolution", "convolution2d"), "Conv2d"),
    **dict.fromkeys(("deconv", "convtranspose", "upconv"), "ConvTranspose2d"),
    **dict.fromkeys(("drop", "dropout"), "Dropout"),
    **dict.fromkeys(("bn", "batchnorm", "batchnormalization"), "BatchNorm2d"),
    **dict.fromkeys(("ln", "layernorm", "layernormalization"), "LayerNorm"),
    **dict.fromkeys(("concat", "concatenate"), "cat"),
    **dict.fromkeys(("avgpool", "averagepool", "avgpooling", "averagepooling"), "avg_pool2d"),
    **dict.fromkeys(("maxpool", "maxpooling"), "max_pool2d"),
    **dict.fromkeys(("gap", "globalavgpool", "globalaveragepooling"), "adaptive_avg_pool2d"),
    **dict.fromkeys(("reducesum",), "sum"),
    **dict.fromkeys(("reducemean", "average", "avg"), "mean"),
    **dict.fromkeys(("max", "reducemax"), "amax"),
    **dict.fromkeys(("plus", "residual"), "add"),
    **dict.fromkeys(("multiply", "times", "prod", "hadamard"), "mul"),
    **dict.fromkeys(("swish",), "silu"),
    **dict.fromkeys(("embed",), "Embedding"),
    **dict.fromkeys(("attn", "selfattention", "mha", "multiheadattention"), "attention"),
    **dict.fromkeys(("identity", "noop", "passthrough"), "Identity"),
}


def synonym(op: str) -> str | None:
    """The op `op` means, when it is another library's name for one (dense → Linear, mm → matmul)."""
    return SYNONYMS.get(op.lower().replace("_", "").replace("-", ""))


# Arguments that are sizes or counts: a spec must give positive whole numbers.
POSITIVE_ARGS = frozenset(
    "in_features out_features in1_features in2_features in_channels out_channels num_features num_channels "
    "num_groups input_size hidden_size num_layers embedding_dim num_embeddings d_model nhead num_heads embed_dim "
    "dim_feedforward num_encoder_layers num_decoder_layers kernel_size stride dilation groups normalized_shape".split()
)
_NUMBER_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def yaml_hint(value: Any) -> str | None:
    """A hint for values YAML 1.1 reads differently from what people mean."""
    if isinstance(value, bool):
        return "YAML 1.1 reads yes/no/on/off/true/false as booleans; quote it to keep it as text"
    if isinstance(value, str) and _NUMBER_TEXT.match(value.strip()):
        return "it is text: drop the quotes, and write exponents with a dot (1.0e-3), which YAML 1.1 needs to read a number"
    return None


def expected_kinds(param: inspect.Parameter) -> set[str]:
    """What a parameter takes, as far as its annotation (or else its default) says: int/float/bool/str."""
    text = str(param.annotation) if param.annotation is not param.empty else type(param.default).__name__
    return {kind for kind in ("int", "float", "bool", "str") if re.search(rf"\b{kind}\b", text)}


def _wrong_kind(value: Any, expects: set[str], takes_sequence: bool) -> str | None:
    """What `value` (or an item of its list) is when the annotation rules it out: text where only
    numbers or booleans are due, a boolean where only numbers are, a fraction where only whole numbers."""
    if not expects:  # no annotation to go by: torch checks it when the layer is made
        return None
    if isinstance(value, (list, tuple)):
        if not takes_sequence:
            return f"{list(value)!r} is a list"
        return next((w for w in (_wrong_kind(item, expects, True) for item in value) if w), None)
    if isinstance(value, str) and "str" not in expects:
        return f"{value!r} is text"
    if isinstance(value, bool) and not expects & {"bool", "str"}:
        return f"{value!r} is a boolean"
    if isinstance(value, float) and not expects & {"float", "str"}:
        return f"{value!r} is not a whole number"
    return None


def _takes_sequence(param: inspect.Parameter) -> bool:
    """Whether the annotation allows a list or tuple (kernel_size: [3, 3]); without one, assume so."""
    if param.annotation is param.empty:
        return param.default is param.empty or param.default is None or isinstance(param.default, (list, tuple))
    return re.search(r"tuple|list|sequence|size|iterable|any", str(param.annotation), re.IGNORECASE) is not None


def check_argument(op: str, param: inspect.Parameter, value: Any) -> str | None:
    """Why `value` cannot be `param` of `op`, or None when it can."""
    name, expects = param.name, expected_kinds(param)
    if isinstance(value, str) and _NUMBER_TEXT.match(value.strip()) and expects & {"int", "float"}:
        return f"{op} {name}: {value!r} is text, not a number"
    if isinstance(value, bool) and expects == {"str"}:
        return f"{op} {name}: {value!r} is a boolean, not text"
    if name in POSITIVE_ARGS and value is not None:  # None asks for the default (stride: null)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
                whole = "positive whole numbers" if isinstance(value, (list, tuple)) else "a positive whole number"
                return f"{op} {name} must be {whole}, got {value!r}"
    wrong = _wrong_kind(value, expects, _takes_sequence(param))
    if wrong:
        return f"{op} {name}: {wrong}, but it takes {' or '.join(sorted(expects))}"
    return None
