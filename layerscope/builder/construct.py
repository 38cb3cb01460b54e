"""Build stage, one layer's module, with in-dims read off its input.

For the tables (`initialise` off), modules are constructed on the meta device, where their
initialisers compute nothing, and then given uninitialised storage: they need shapes, not weight values.
For a model to train (`initialise` on, layerscope.build), each module is constructed as torch.nn
constructs it, initialisers included, in the order the exported Python file constructs them, so
under one seed both hold the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from layerscope._torch_compat import no_init, replace_tensors
from layerscope.builder.budget import Budget
from layerscope.errors import SpecError, first_line
from layerscope.spec.catalog import lookup
from layerscope.spec.layer_spec import LayerSpec
from layerscope.spec.ops import FunctionalOp, free_tensor


class Constructor:
    """Makes the torch module of an op layer on `device` in `dtype`, charging its parameters to `budget`."""

    def __init__(self, device: torch.device, dtype: torch.dtype, budget: Budget, initialise: bool = False):
        self.device = device
        self.dtype = dtype
        self.budget = budget
        self.initialise = initialise
        # id of each torch module (and free tensor) built → (op, the arguments it was constructed with, inferred
        # ones included)
        self.recipes: dict[int, tuple[str, dict[str, Any]]] = {}
        self._lazy: dict[int, tuple[Any, Any]] = {}  # id of each lazy module → (its op's info, bound arguments)

    def construct(self, layer: LayerSpec, inputs: Sequence[Any]) -> nn.Module:
        """The module for `layer`; an in-dim the spec leaves out is read off `inputs[0]`."""
        info = lookup(layer.op)
        assert info is not None, layer.op  # the spec stage checked the name
        args = [self._to_torch(a) for a in layer.args]
        kwargs = {k: self._to_torch(v) for k, v in layer.kwargs.items()}
        bound = info.signature.bind_partial(*args, **kwargs)
        if info.inference and info.inference.arg not in bound.arguments and inputs:
            bound.arguments[info.inference.arg] = self.infer(layer, info.inference, inputs[0])
        try:
            bound = info.signature.bind(*bound.args, **bound.kwargs)
        except TypeError as e:
            raise SpecError(f"{layer.op}: {e}", source=layer.source, hint=info.usage) from None
        if info.kind == "functional":
            return FunctionalOp(layer.op, **bound.arguments)
        try:
            module = self._make(info, bound)
        except Exception as e:  # noqa: BLE001 - torch's own argument checks, reported at the layer
            raise SpecError(f"{layer.op}: {first_line(str(e))}", source=layer.source) from None
        self.recipes[id(module)] = (layer.op, dict(bound.arguments))
        if info.is_lazy:  # lazy parameters cannot be moved; they materialise on first call
            self._lazy[id(module)] = (info, bound)
            return module
        self.budget.charge(sum(p.numel() * self._dtype_of(p).itemsize for p in module.parameters()))
        if self.initialise:
            return module if self.dtype == torch.float32 else module.to(self.dtype)
        return self._place(module)

    def free_tensor(self, layer: LayerSpec) -> Tensor:
        """The tensor of a `param:` or `buffer:` layer on the device in the model's dtype, its bytes
        charged to the budget before they are allocated (on meta, none are)."""
        spec = layer.tensor
        assert spec is not None
        self.budget.charge(math.prod(spec.shape) * self.dtype.itemsize)
        with torch.device(self.device):
            value = free_tensor(spec.shape, spec.init, spec.seed, self.dtype)
        tensor = nn.Parameter(value, requires_grad=spec.flag) if spec.kind == "param" else value
        flag = "requires_grad" if spec.kind == "param" else "persistent"
        self.recipes[id(tensor)] = (
            spec.kind,
            {"shape": spec.shape, "init": spec.init, "seed": spec.seed, flag: spec.flag},
        )
        return tensor

    def _make(self, info: Any, bound: Any) -> nn.Module:
        """The torch module itself, as torch.nn constructs it: lazy ones on the device in the model's
        dtype (their weights come on the first call), others on the device (`initialise`), else on meta,
        where their initialisers compute nothing."""
        if info.is_lazy:
            with torch.device(self.device):
                return info.target(*bound.args, **bound.kwargs, dtype=self.dtype)  # type: ignore[no-any-return]
        with torch.device(self.device if self.initialise else "meta"):
            return info.target(*bound.args, **bound.kwargs)  # type: ignore[no-any-return]

    def lazy_bytes(self, module: nn.Module, inputs: Sequence[Any]) -> int:
        """The bytes a lazy module's first call on `inputs` will make its weights take: a twin on
        meta takes its shapes from meta copies of the inputs, so nothing is allocated to find out."""
        info, bound = self._lazy[id(module)]
        with torch.device("meta"), no_init():
            twin = info.target(*bound.args, **bound.kwargs, dtype=self.dtype)
            twin.initialize_parameters(
                *[torch.empty(x.shape, dtype=x.dtype) if isinstance(x, Tensor) else x for x in inputs]
            )
        return sum(t.numel() * t.element_size() for t in (*twin.parameters(), *twin.buffers()))

    def infer(self, layer: LayerSpec, inference: Any, x: Any) -> Any:
        """The in-dim `inference.arg` of `layer`, read off the shape of its input `x`."""
        if not isinstance(x, Tensor):
            raise SpecError(
                f"cannot infer {layer.op}.{inference.arg}: its input is a {type(x).__name__}, not a tensor",
                source=layer.source,
                hint=f"write {inference.arg}: explicitly, or add a select: before it",
            )
        try:
            return int(inference.read(x.shape))
        except IndexError:
            shape = "x".join(map(str, x.shape)) or "a scalar"
            raise SpecError(
                f"cannot infer {layer.op}.{inference.arg} (the input's {inference.describe}) from an input of shape {shape}",
                source=layer.source,
                hint=f"its input has too few dims; write {inference.arg}: explicitly or reshape first",
            ) from None

    def _place(self, module: nn.Module) -> nn.Module:
        """`module`, built on meta, given uninitialised storage on the device in the model's dtype."""
        if self.device.type == "meta" and self.dtype == torch.float32:
            return module  # already what is wanted
        # Uninitialised storage by shape, like `to_empty` but without its `empty_like` on meta
        # tensors, whose first use imports torch's meta kernels (~0.4 s).
        return replace_tensors(module, lambda t: torch.empty(t.shape, dtype=self._dtype_of(t), device=self.device))

    def _dtype_of(self, t: Tensor) -> torch.dtype:
        return self.dtype if t.is_floating_point() else t.dtype

    def _to_torch(self, value: Any) -> Any:
        """YAML values as torch expects them: lists become tuples, nested layer specs become modules."""
        if isinstance(value, LayerSpec):
            return self.construct(value, [])
        if isinstance(value, list):
            return tuple(self._to_torch(v) for v in value)
        return value
