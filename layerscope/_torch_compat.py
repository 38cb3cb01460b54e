"""Every private torch detail layerscope relies on, each behind a feature check with a fallback.

A torch release may rename or drop anything here; when it does, layerscope keeps working, only
slower or a little less precise, and no other module needs to change. Nothing here patches torch
for the whole process: what UncompiledDispatchMode gives torch's functions for a run, it takes back.
"""

from __future__ import annotations

import functools
import gc
import importlib.abc
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

# The base of dispatch modes; no public alias in torch 2.x. No fallback: torch's own FlopCounterMode
# is built on it, so a torch without it could not count FLOPs at all.
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


HigherOrderOperator = getattr(getattr(torch, "_ops", None), "HigherOrderOperator", None)


def is_higher_order(func: Any) -> bool:
    """Whether `func` is a higher-order operator (torch.cond, while_loop, flex_attention, ...)."""
    return HigherOrderOperator is not None and isinstance(func, HigherOrderOperator)


def higher_order_op(name: str) -> Any | None:
    """torch.ops.higher_order.`name`, or None where this torch has no such operator."""
    return getattr(getattr(torch.ops, "higher_order", None), name, None)


class UncompiledDispatchMode(TorchDispatchMode):
    """A dispatch mode that runs without importing torch._dynamo, and leaves torch as it found it.

    torch wraps each mode's __torch_dispatch__, and many of its own Python kernels (the meta
    device's among them), to be skipped by torch.compile (`torch._compile._disable_dynamo`). On
    its first call such a wrapper imports torch._dynamo (~0.7 s, 800 modules) to make the skipping
    version of its function, and keeps it on the function (`__dynamo_disable`). While a mode of
    this class is active, every such function without one holds a `_SkippedWhenCompiling` there
    instead (the mode's own dispatch function too): as long as torch._dynamo is not imported
    nothing can be compiling, so it calls the function as is. An import of torch._dynamo (torch.cond
    compiles internally) removes every stand-in first, and torch makes its own skipping versions as
    usual. When the outermost mode exits, the stand-ins are removed too: torch is as it was.
    """

    _depth = 0  # how many modes of this class are active: the outermost installs and removes

    def __enter__(self) -> Any:
        if UncompiledDispatchMode._depth == 0:
            if "torch._dynamo" not in sys.modules:
                _STAND_INS.install()
            _FLEX.__enter__()
        UncompiledDispatchMode._depth += 1
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        UncompiledDispatchMode._depth -= 1
        if UncompiledDispatchMode._depth == 0:
            _STAND_INS.remove()
            _FLEX.__exit__()


class _FlexAttentionUncompiled:
    """flex_attention without its internal torch.compile, for a run: eager flex_attention compiles its
    operator (backend "eager"), and torch.compile skips every frame while a dispatch mode is active, so
    under any mode it fails ("found no compiled frames"; FlopCounterMode's too). torch's own switch
    `_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG` calls the operator directly instead, which the mode then
    sees (and counts by torch's formula). Set only while a run is active, and only where the model has
    imported flex_attention; restored after."""

    def __init__(self) -> None:
        self.saved: tuple[Any, bool] | None = None

    def __enter__(self) -> None:
        module = sys.modules.get("torch.nn.attention.flex_attention")
        flag = "_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG"
        if module is not None and isinstance(getattr(module, flag, None), bool):
            self.saved = (module, getattr(module, flag))
            setattr(module, flag, True)

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            module, value = self.saved
            module._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = value
            self.saved = None


_FLEX = _FlexAttentionUncompiled()


_CACHE = "__dynamo_disable"  # where torch's wrapper keeps the skipping version of its function


class _SkippedWhenCompiling:
    """`fn`, called as is: it stands in for the skipping version only while torch._dynamo is not
    imported, when nothing can be compiling (see `_StandIns`)."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


class _StandIns(importlib.abc.MetaPathFinder):
    """The stand-ins given to torch's wrapped functions for a run, and a watch on `import torch._dynamo`:
    when anything imports it (torch.cond does, to compile its branches), every stand-in goes at once,
    before dynamo can see one, and from then on torch makes its own skipping versions."""

    def __init__(self) -> None:
        self.given: list[Callable[..., Any]] = []

    def install(self) -> None:
        self.given = [fn for fn in _wrapped_functions() if _answer(fn)]
        sys.meta_path.insert(0, self)

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for fn in self.given:
            if isinstance(getattr(fn, _CACHE, None), _SkippedWhenCompiling):
                delattr(fn, _CACHE)
        self.given = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torch._dynamo":
            self.remove()
        return None  # the import itself goes on as usual


_STAND_INS = _StandIns()


def _answer(fn: Callable[..., Any]) -> bool:
    """Give a wrapped function a `_SkippedWhenCompiling` where it has no skipping version yet."""
    if hasattr(fn, _CACHE):
        return False
    setattr(fn, _CACHE, _SkippedWhenCompiling(fn))
    return True


def _wrapped_function(wrapper: Any) -> Callable[..., Any] | None:
    """The function inside one of torch's `_disable_dynamo` wrappers; else None."""
    code = _wrapper_code()
    if code is None or type(wrapper) is not types.FunctionType or wrapper.__code__ is not code:
        return None
    cells = dict(zip(code.co_freevars, wrapper.__closure__ or (), strict=False))
    return cells["fn"].cell_contents if "fn" in cells else None


@functools.cache
def _wrapped_functions() -> tuple[Callable[..., Any], ...]:
    """Every function torch has wrapped with `_disable_dynamo` so far, found once per process (~0.03 s)."""
    found = (_wrapped_function(obj) for obj in gc.get_objects() if type(obj) is types.FunctionType)
    return tuple(f for f in found if f is not None)


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


@functools.cache
def _wrapper_code() -> types.CodeType | None:
    """The code object of torch's `_disable_dynamo` wrapper, or None where torch has none."""
    disable = getattr(getattr(torch, "_compile", None), "_disable_dynamo", None)
    if disable is None:
        return None
    wrapped = disable(lambda: None)
    code = getattr(wrapped, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


_CPU_FLASH = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)


@functools.cache
def _cpu_fuses_3d() -> bool:
    """Whether this torch's CPU takes its fused attention kernel for 3-d q, k, v (2.14 does, 2.13 not)."""
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:
        return False
    x = torch.zeros(1, 2, 8, requires_grad=True)
    try:
        return bool(choose(x, x, x, None, 0.0, False) == 1)  # SDPBackend.FLASH_ATTENTION
    except RuntimeError:
        return False


_FLASH_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def cpu_fused_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor | None:
    """scaled_dot_product_attention as the CPU runs it where it picks its fused kernel, run on another
    device (meta takes the math path, which saves the attention matrices for backward; the fused
    kernel saves q, k, v, its output and a logsumexp). None where the CPU takes the math path too,
    or this torch lacks the kernel. The conditions are the CPU's (use_flash_attention_cpp in torch's
    sdp_utils_cpp); tests/test_training.py checks them against torch._fused_sdp_choice on the CPU."""
    q, k, v = query, key, value
    if _CPU_FLASH is None or not torch.backends.cuda.flash_sdp_enabled() or dropout_p > 0:
        return None
    if {q.dim(), k.dim(), v.dim()} == {3} and _cpu_fuses_3d() and (attn_mask is None or attn_mask.dim() <= 3):
        # torch ≥ 2.14 runs (heads, sequence, features) as a batch of one: views, the same storages
        out = cpu_fused_attention(q[None], k[None], v[None], attn_mask, dropout_p, is_causal, scale, enable_gqa)
        return None if out is None else out[0]
    if any(t.dim() != 4 or t.dtype not in _FLASH_DTYPES or t.dtype != q.dtype or t.stride(-1) != 1 for t in (k, v, q)):
        return None
    heads_fit = q.shape[1] == k.shape[1] == v.shape[1] or (
        enable_gqa and k.shape[1] == v.shape[1] and k.shape[1] > 0 and q.shape[1] % k.shape[1] == 0
    )
    if not heads_fit or not q.shape[0] == k.shape[0] == v.shape[0] or not q.shape[-1] == k.shape[-1] == v.shape[-1]:
        return None
    if 0 in (q.shape[2], k.shape[2]) or (attn_mask is not None and is_causal):
        return None
    if attn_mask is not None:
        scores = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        try:
            if torch.broadcast_shapes(attn_mask.shape, scores) != scores:
                return None
        except RuntimeError:
            return None
        if attn_mask.dtype == torch.bool:  # the CPU turns it into an additive mask first, as here
            attn_mask = torch.zeros(attn_mask.shape, dtype=q.dtype, device=q.device).masked_fill_(
                attn_mask.logical_not(), float("-inf")
            )
        elif attn_mask.dtype != q.dtype:
            return None
    return _CPU_FLASH(q, k, v, 0.0, is_causal, attn_mask=attn_mask, scale=scale)[0]  # type: ignore[no-any-return]


def tensor_version(t: Tensor) -> int | None:
    """A tensor's version counter (`_version`, bumped by every in-place op), else None: an inference
    tensor has none, and a torch without the attribute gives no answer."""
    try:
        version = getattr(t, "_version", None)
    except RuntimeError:  # an inference-mode tensor
        return None
    return version if isinstance(version, int) else None
