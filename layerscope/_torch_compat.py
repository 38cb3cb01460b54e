"""Every private torch detail layerscope relies on, each behind a feature check with a fallback.

A torch release may rename or drop anything here; when it does, layerscope keeps working, only
slower or a little less precise, and no other module needs to change. Nothing here patches torch
for the whole process unless a caller opts in (`answer_dynamo_lookups`, the CLI only).
"""

from __future__ import annotations

import functools
import gc
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

aten = torch.ops.aten

try:  # the base of dispatch modes such as FlopCounterMode; no public alias in torch 2.x
    from torch.utils._python_dispatch import TorchDispatchMode
except ImportError:  # pragma: no cover - every torch layerscope supports has it
    from torch.utils.flop_counter import FlopCounterMode as _FlopCounterMode

    TorchDispatchMode = _FlopCounterMode.__mro__[1]  # type: ignore[misc]

try:  # while a mode handles an op, the modes below it run what it calls
    from torch.utils._python_dispatch import _pop_mode_temporarily as pop_mode_temporarily
except ImportError:  # pragma: no cover
    pop_mode_temporarily = None

HigherOrderOperator = getattr(getattr(torch, "_ops", None), "HigherOrderOperator", None)


def is_higher_order(func: Any) -> bool:
    """Whether `func` is a higher-order operator (torch.cond, while_loop, flex_attention, ...)."""
    return HigherOrderOperator is not None and isinstance(func, HigherOrderOperator)


def higher_order_op(name: str) -> Any | None:
    """torch.ops.higher_order.`name`, or None where this torch has no such operator."""
    return getattr(getattr(torch.ops, "higher_order", None), name, None)


class UncompiledDispatchMode(TorchDispatchMode):
    """A dispatch mode that does not import torch._dynamo to run.

    torch wraps each mode's __torch_dispatch__ to be skipped by torch.compile; on its first call
    the wrapper imports torch._dynamo (~0.8 s, 800 modules) to make the skipping version, and keeps
    it on the function (`__dynamo_disable`). A subclass's own function gets a stand-in there
    instead (`_SkippedWhenCompiling`): while torch._dynamo is not imported nothing can be compiling,
    so it calls the function as is; once it is (torch.cond compiles internally), it makes and uses
    the skipping version, as torch would. Nothing of torch's is changed.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dispatch = cls.__dict__.get("__torch_dispatch__")
        code = _wrapper_code()
        if code is None or type(dispatch) is not types.FunctionType or dispatch.__code__ is not code:
            return  # not wrapped by this torch: nothing to answer
        if dispatch.__closure__ and "fn" in code.co_freevars:
            fn = dispatch.__closure__[code.co_freevars.index("fn")].cell_contents
            fn.__dynamo_disable = _SkippedWhenCompiling(fn)


class _SkippedWhenCompiling:
    """`fn`, skipped by torch.compile as torch's wrapper asks, without importing torch._dynamo to say so."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.skipped: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if "torch._dynamo" not in sys.modules:  # nothing can be compiling
            return self.fn(*args, **kwargs)
        if self.skipped is None:
            import torch._dynamo

            self.skipped = torch._dynamo.disable(self.fn, recursive=True)
        return self.skipped(*args, **kwargs)


try:  # torch's FLOP formulas by aten overload packet: public module, undocumented table
    from torch.utils.flop_counter import flop_registry as FLOP_FORMULAS
except ImportError:  # pragma: no cover
    FLOP_FORMULAS = {}


def aten_op(name: str, overload: str = "default") -> Any | None:
    """The aten op `name.overload`, or None where this torch has no such op (private ops come and go)."""
    packet = getattr(aten, name, None)
    return getattr(packet, overload, None) if packet is not None else None


def aten_ops(*names: str) -> list[Any]:
    """The ops among `names` ("relu", "add.Tensor") that this torch has, in order."""
    found = [aten_op(*name.split(".", 1)) for name in names]
    return [op for op in found if op is not None]


def cpu_flash_attention_formula() -> dict[Any, Callable[..., int]]:
    """The CPU's fused attention kernel counted as the flash kernel's two matmuls: FlopCounterMode
    has no formula for it and counts 0, while the same attention on meta counts its matmuls."""
    cpu, flash = (
        getattr(aten, n, None)
        for n in ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention")
    )
    if cpu is None or flash is None or flash not in FLOP_FORMULAS:
        return {}
    return {cpu: FLOP_FORMULAS[flash]}


# Queries about a tensor's layout, which a dispatch mode lets through untouched, as FlopCounterMode does.
LAYOUT_QUERIES = frozenset(
    aten_ops(
        "sym_is_contiguous",  # since torch 2.9
        "is_contiguous",
        "is_contiguous.memory_format",
        "is_strides_like_format",
        "is_non_overlapping_and_dense",
        "size",
        "sym_size",
        "stride",
        "sym_stride",
        "storage_offset",
        "sym_storage_offset",
        "numel",
        "sym_numel",
        "dim",
    )
    + [op for op in [getattr(getattr(torch.ops.prim, "layout", None), "default", None)] if op is not None]
)
PRIM_DEVICE = getattr(getattr(torch.ops.prim, "device", None), "default", None)


def _private_class(module: Any, name: str, fallback: tuple[type, ...]) -> type | tuple[type, ...]:
    """A private base class of torch.nn (for isinstance), or the public classes it stands for."""
    found = getattr(module, name, None)
    return found if isinstance(found, type) else fallback


CONV_BASE = _private_class(
    nn.modules.conv,
    "_ConvNd",
    (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
)
BATCHNORM_BASE = _private_class(
    nn.modules.batchnorm, "_BatchNorm", (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
)
MAXPOOL_BASE = _private_class(nn.modules.pooling, "_MaxPoolNd", (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d))
AVGPOOL_BASE = _private_class(nn.modules.pooling, "_AvgPoolNd", (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d))


def module_type_name(module: nn.Module) -> str:
    """The name torch prints for a module (`_get_name`, which a module may override), else its class name."""
    get_name = getattr(module, "_get_name", None)
    return get_name() if callable(get_name) else type(module).__name__


def replace_tensors(module: nn.Module, make: Callable[[Tensor], Tensor]) -> nn.Module:
    """`module` with every parameter and buffer replaced by `make(tensor)`, in place.

    `Module._apply` is what `to_empty` uses too, so RNNs re-flatten their weights; without it,
    each tensor is swapped by name (recurrent layers then re-flatten on their first call).
    """
    apply = getattr(module, "_apply", None)
    if callable(apply):
        return apply(make)  # type: ignore[no-any-return]
    for owner in module.modules():  # pragma: no cover - every torch layerscope supports has _apply
        for name, p in list(owner.named_parameters(recurse=False)):
            setattr(owner, name, nn.Parameter(make(p), requires_grad=p.requires_grad))
        for name, b in list(owner.named_buffers(recurse=False)):
            setattr(owner, name, make(b))
    return module


# Initialisers whose values the tables never read: the builder gives every tensor fresh storage.
_INITIALISERS = frozenset(
    {getattr(nn.init, name) for name in dir(nn.init) if name.endswith("_") and not name.startswith("_")}
    | {getattr(Tensor, name) for name in ("uniform_", "normal_", "fill_", "zero_", "random_", "bernoulli_")}
)


class no_init(TorchFunctionMode):
    """Construct modules without running their initialisers: only shapes are wanted, and an
    initialiser on the meta device is a Python kernel whose first call costs ~0.3 s."""

    def __torch_function__(
        self, func: Callable[..., Any], types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in _INITIALISERS:
            return args[0] if args else kwargs.get("tensor")
        return func(*args, **kwargs)


_answered = False


def answer_dynamo_lookups() -> None:
    """Stop torch importing torch._dynamo (~0.7 s, 800 modules) the first time a meta kernel runs.

    Many of torch's Python kernels are wrapped to be skipped by torch.compile; the wrapper imports
    torch._dynamo on its first call to ask for the skipping version of the function, and caches
    the answer on it. Caching the plain function instead is the same call outside torch.compile;
    under torch.compile these kernels would be traced rather than skipped. The CLI never
    compiles, so it opts in (~0.03 s, once); library users keep torch's behaviour.
    Where torch has no such wrapper, there is nothing to answer.
    """
    global _answered
    code = _wrapper_code()
    if not _answered and code is not None:
        _answered = True
        for obj in gc.get_objects():
            if type(obj) is types.FunctionType and obj.__code__ is code:
                answer_dynamo_lookup(obj)


def answer_dynamo_lookup(wrapper: Any) -> None:
    """`answer_dynamo_lookups` for one function wrapped by torch's `_disable_dynamo`; else nothing."""
    code = _wrapper_code()
    if code is None or type(wrapper) is not types.FunctionType or wrapper.__code__ is not code:
        return
    if wrapper.__closure__ and "fn" in code.co_freevars:
        fn = wrapper.__closure__[code.co_freevars.index("fn")].cell_contents
        if not hasattr(fn, "__dynamo_disable"):
            fn.__dynamo_disable = fn


@functools.cache
def _wrapper_code() -> types.CodeType | None:
    """The code object of torch's `_disable_dynamo` wrapper, or None where torch has none."""
    disable = getattr(getattr(torch, "_compile", None), "_disable_dynamo", None)
    if disable is None:
        return None
    wrapped = disable(lambda: None)
    code = getattr(wrapped, "__code__", None)
    return code if isinstance(code, types.CodeType) else None
