"""Build stage: ModelSpec → torch.nn.Module whose submodule names are the spec's layer names.

In-dims left out of the spec are read off the shapes that flow through the model while it is
being built, so each layer is run once on example inputs as soon as it exists. Modules are
constructed on the meta device and then given uninitialised storage: the tables need shapes,
not weight values, so no time goes into initialisation.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules.lazy import LazyModuleMixin

from layerscope.errors import Source, SpecError, UsageError, did_you_mean
from layerscope.report.model import Note
from layerscope.run import devices
from layerscope.run.counting import OpCounter
from layerscope.run.trace import nbytes
from layerscope.spec.catalog import lookup
from layerscope.spec.model import DTYPES, InputSpec, LayerSpec, ModelSpec
from layerscope.spec.ops import FunctionalOp

_DTYPES = {name: getattr(torch, name) for name in DTYPES}  # the spec's dtype names are torch's


class SpecModule(nn.Module):
    """A model or nested Sequential from a spec: runs its layers in file order along `from:` edges."""

    def __init__(self, type_name: str, input_names: Sequence[str], output: str | None = None):
        super().__init__()
        self._type_name = type_name
        self.input_names = tuple(input_names)
        self.output = output  # the name whose value is returned, when not the last layer's
        self.nodes: list[tuple[str, tuple[str, ...]]] = []

    def add_node(self, name: str, module: nn.Module, inputs: Sequence[str]) -> None:
        """Append a layer; registering a module under a second name shares its weights."""
        self.add_module(name, module)
        self.nodes.append((name, tuple(inputs)))

    def forward(self, *args: Any) -> Any:
        if len(args) != len(self.input_names):
            raise TypeError(
                f"{self._type_name} takes {len(self.input_names)} input(s) ({', '.join(self.input_names)}), got {len(args)}"
            )
        env = inputs_by_name(self.input_names, args)
        out = args[0]
        for name, inputs in self.nodes:
            xs = [env[i] for i in inputs] if inputs else [out]
            out = self._modules[name](*xs)  # type: ignore[misc]
            env[name] = out
        return out if self.output is None else env[self.output]

    def _get_name(self) -> str:
        return self._type_name


def inputs_by_name(names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """What `from:` can name in a container: its inputs by name, and `input` for the first."""
    return {"input": values[0], **dict(zip(names, values, strict=False))}


@dataclass
class Built:
    """A built model, the example inputs it was built for, and where each layer was written."""

    model: nn.Module
    inputs: tuple[Tensor, ...]
    device: torch.device
    sources: dict[str, Source] = field(default_factory=dict)  # qualified module name → spec position
    stopped_at: str | None = None  # the layer whose forward failed while building
    skipped: list[str] = field(default_factory=list)  # spec layers after it, never built
    # id of each torch module built → (op, the arguments it was constructed with, inferred ones included)
    recipes: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def notes(self) -> list[Note]:
        """What the report must say about a model that could not be built to the end."""
        if not self.skipped or self.stopped_at is None:
            return []
        names = ", ".join(self.skipped[:4]) + (", ..." if len(self.skipped) > 4 else "")
        return [
            Note(
                self.stopped_at,
                f"building stopped here; {len(self.skipped)} later layer(s) ({names}) are not in the totals",
            )
        ]


FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")  # what --dtype may ask for


def _input_dtype(spec: InputSpec, dtype: torch.dtype) -> torch.dtype:
    """An input left at the default float32 takes the model's dtype; any other keeps what the spec says."""
    return dtype if spec.dtype == "float32" else _DTYPES[spec.dtype]


def make_inputs(
    specs: Sequence[InputSpec], device: torch.device, model_dtype: torch.dtype = torch.float32
) -> tuple[Tensor, ...]:
    """Example tensors for the inputs: deterministic values; integer ids span the declared range."""
    tensors = []
    generator = torch.Generator().manual_seed(0)
    for spec in specs:
        dtype = _input_dtype(spec, model_dtype)
        if device.type == "meta":
            tensors.append(torch.empty(spec.shape, dtype=dtype, device=device))
        elif dtype.is_floating_point:
            tensors.append(torch.randn(spec.shape, generator=generator).to(dtype=dtype, device=device))
        else:
            low, high = spec.value_range or (0, 1)
            values = torch.arange(int(torch.Size(spec.shape).numel())) % (high - low) + low
            values[-1] = high - 1  # the largest id is what an Embedding's size must cover
            tensors.append(values.reshape(spec.shape).to(dtype=dtype, device=device))
    return tuple(tensors)


def build(
    spec: ModelSpec, inputs: Sequence[InputSpec] | None = None, device: str = "auto", dtype: str = "float32"
) -> Built:
    """Build `spec` for `inputs` (default: the spec's own input:) on `device` (auto, cpu or meta).

    auto: see devices.py. `dtype` is the parameters' and the floating inputs' dtype.
    """
    if dtype not in FLOAT_DTYPES:
        raise UsageError(
            f"unknown --dtype {dtype!r}", hint=did_you_mean(dtype, FLOAT_DTYPES) or ", ".join(FLOAT_DTYPES)
        )
    inputs = tuple(inputs) if inputs is not None else spec.inputs
    if not inputs:
        raise SpecError(
            f"{spec.name} declares no input: and none was given",
            source=spec.source,
            hint="add input: {shape: [...]} or pass --input, e.g. --input 1x3x32x32",
        )
    if device == "auto":
        return _build_auto(spec, inputs, dtype)
    return _Builder(spec, devices.named(device), _DTYPES[dtype]).run(inputs)


def _build_auto(spec: ModelSpec, inputs: Sequence[InputSpec], dtype: str = "float32") -> Built:
    """On the CPU within devices' budgets, else again on meta."""
    try:
        return _Builder(spec, torch.device("cpu"), _DTYPES[dtype], budgeted=True).run(inputs)
    except devices.OverBudget:
        return _Builder(spec, devices.meta(), _DTYPES[dtype]).run(inputs)


def spec_probe(
    spec: ModelSpec, inputs: Sequence[InputSpec], dtype: str = "float32"
) -> Callable[[list[int], str], tuple[bool, bool]]:
    """A diagnose probe that rebuilds `spec` for each candidate first-input shape, like `build` does.

    Rebuilding, rather than re-running the model that failed, counts the layers that were never
    built and the in-dims that are inferred from the input.
    """

    def probe(first_shape: list[int], layer: str) -> tuple[bool, bool]:
        candidate = [replace(inputs[0], shape=tuple(first_shape)), *inputs[1:]]
        try:
            built = _build_auto(spec, candidate, dtype)
        except SpecError:  # e.g. an in-dim that cannot be inferred from this shape
            return False, False
        return built.stopped_at is None, layer in built.sources and built.stopped_at != layer

    return probe


class _Builder:
    def __init__(self, spec: ModelSpec, device: torch.device, dtype: torch.dtype, budgeted: bool = False):
        self.spec = spec
        self.device = device
        self.dtype = dtype
        self.budgeted = budgeted  # within devices.CPU_BUDGET_BYTES and CPU_BUDGET_MACS, or devices.OverBudget
        self.used_bytes = 0
        self.used_macs = 0
        self.registry: dict[str, nn.Module] = {}
        self.sources: dict[str, Source] = {}
        self.stopped_at: str | None = None
        self.skipped: list[str] = []
        self.recipes: dict[int, tuple[str, dict[str, Any]]] = {}

    def charge(self, nbytes: int = 0, macs: int = 0) -> None:
        """Count bytes about to live on the device and work about to be done; past a budget, stop."""
        self.used_bytes += nbytes
        self.used_macs += macs
        if self.budgeted and (self.used_bytes > devices.CPU_BUDGET_BYTES or self.used_macs > devices.CPU_BUDGET_MACS):
            raise devices.OverBudget

    def run(self, inputs: Sequence[InputSpec]) -> Built:
        self.charge(sum(torch.Size(i.shape).numel() * _input_dtype(i, self.dtype).itemsize for i in inputs))
        tensors = make_inputs(inputs, self.device, self.dtype)
        # on meta, common ops are answered by shape (dispatch.py); on the CPU they just run
        quick = OpCounter() if self.device.type == "meta" else contextlib.nullcontext()
        with torch.no_grad(), warnings.catch_warnings(), quick:
            warnings.simplefilter("ignore")  # the trace stage records warnings; building repeats them
            model, _ = self.container(
                self.spec.name, self.spec.layers, [i.name for i in inputs], tensors, "", self.spec.output
            )
        return Built(model, tensors, self.device, self.sources, self.stopped_at, self.skipped, self.recipes)

    def container(
        self,
        type_name: str,
        layers: Sequence[LayerSpec],
        input_names: Sequence[str],
        xs: Sequence[Any],
        prefix: str,
        output: str | None,
    ) -> tuple[SpecModule, Any]:
        module = SpecModule(type_name, input_names, output)
        env = inputs_by_name(input_names, xs)
        out: Any = xs[0]
        for index, layer in enumerate(layers):
            if self.stopped_at is not None:
                self.skipped.extend(prefix + later.name for later in layers[index:])
                return module, None
            qualname = prefix + layer.name
            args = [env[i] for i in layer.inputs] if layer.inputs else [out]
            if layer.use is not None:
                child = self.shared(layer, prefix)
            elif layer.is_container:
                child, out = self.container(
                    layer.op, layer.layers, layer.input_names, args, qualname + ".", layer.output
                )
            else:
                child = self.tie(self.construct(layer, args), layer, prefix)
            module.add_node(layer.name, child, layer.inputs)
            self.registry[qualname] = child
            self.sources[qualname] = layer.source
            if self.stopped_at is not None:
                continue  # a nested Sequential stopped inside; the loop records what is left
            if not layer.is_container:
                if self.budgeted:  # the estimate only decides whether the CPU run goes on
                    self.charge(macs=devices.estimated_macs(child, args))
                # a lazy layer makes its weights on its first call: without initialising them
                lazy = devices.no_init() if isinstance(child, LazyModuleMixin) else contextlib.nullcontext()
                try:
                    with lazy:
                        out = child(*args)
                except Exception:  # noqa: BLE001 - the trace stage re-runs and diagnoses this layer
                    self.stopped_at = qualname
                    continue
                self.charge(nbytes(out))
            env[layer.name] = out
        return module, (out if output is None else env[output])

    def shared(self, layer: LayerSpec, prefix: str) -> nn.Module:
        assert layer.use is not None
        for candidate in (prefix + layer.use, layer.use):
            if candidate in self.registry:
                return self.registry[candidate]
        raise SpecError(
            f"use: refers to unknown layer {layer.use!r}",
            source=layer.source,
            hint=did_you_mean(layer.use, self.registry) or "name a layer defined above",
        )

    def tie(self, module: nn.Module, layer: LayerSpec, prefix: str) -> nn.Module:
        """Make each `tie:` parameter of `module` the very tensor of a parameter built before it."""
        for tie in layer.ties:
            own = dict(module.named_parameters())
            if tie.param not in own or "." in tie.param:
                raise SpecError(
                    f"tie: {layer.op} has no parameter {tie.param!r}",
                    source=tie.source,
                    hint=did_you_mean(tie.param, own) or f"{layer.op} has {', '.join(own) or 'no parameters'}",
                )
            target = self.parameter(tie.target, prefix, tie.source)
            if target.shape != own[tie.param].shape:
                shape = "x".join(map(str, target.shape))
                wanted = "x".join(map(str, own[tie.param].shape))
                raise SpecError(
                    f"tie: {tie.target} is {shape} but {layer.name}.{tie.param} is {wanted}",
                    source=tie.source,
                    hint="tied parameters must have the same shape",
                )
            setattr(module, tie.param, target)
        return module

    def parameter(self, name: str, prefix: str, where: Source) -> nn.Parameter:
        """The parameter called `name` (relative to the current block, else from the model's top)."""
        for qualname in (prefix + name, name):
            owner, _, rest = qualname.rpartition(".")
            while owner and owner not in self.registry:
                owner, _, head = owner.rpartition(".")
                rest = f"{head}.{rest}"
            if owner in self.registry:
                try:
                    return self.registry[owner].get_parameter(rest)
                except AttributeError:
                    pass
        known = [f"{q}.{n}" for q, m in self.registry.items() for n, _ in m.named_parameters()]
        raise SpecError(
            f"tie: no parameter {name!r} is defined above",
            source=where,
            hint=did_you_mean(name, known) or "tie to a parameter of a layer above, e.g. wte.weight",
        )

    def construct(self, layer: LayerSpec, inputs: Sequence[Any]) -> nn.Module:
        info = lookup(layer.op)
        assert info is not None, layer.op  # the spec stage checked the name
        args = [_to_torch(a, self) for a in layer.args]
        kwargs = {k: _to_torch(v, self) for k, v in layer.kwargs.items()}
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
            if info.is_lazy:  # lazy parameters cannot be moved; they materialise on first call
                with torch.device(self.device), devices.no_init():
                    module = info.target(*bound.args, **bound.kwargs, dtype=self.dtype)
                self.recipes[id(module)] = (layer.op, dict(bound.arguments))
                return module  # type: ignore[no-any-return]
            with torch.device("meta"), devices.no_init():
                module = info.target(*bound.args, **bound.kwargs)
        except Exception as e:  # noqa: BLE001 - torch's own argument checks, reported at the layer
            raise SpecError(f"{layer.op}: {e}", source=layer.source) from None
        self.recipes[id(module)] = (layer.op, dict(bound.arguments))
        self.charge(sum(p.numel() * self._dtype_of(p).itemsize for p in module.parameters()))
        if self.device.type == "meta" and self.dtype == torch.float32:
            return module  # already what is wanted
        # Uninitialised storage by shape, like `to_empty` but without its `empty_like` on meta
        # tensors, whose first use imports torch's meta kernels (~0.4 s). `_apply` is what
        # `to_empty` uses too, so RNNs still re-flatten their weights.
        return module._apply(lambda t: torch.empty(t.shape, dtype=self._dtype_of(t), device=self.device))

    def _dtype_of(self, t: Tensor) -> torch.dtype:
        return self.dtype if t.is_floating_point() else t.dtype

    def infer(self, layer: LayerSpec, inference: Any, x: Any) -> Any:
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


def _to_torch(value: Any, builder: _Builder) -> Any:
    """YAML values as torch expects them: lists become tuples, nested layer specs become modules."""
    if isinstance(value, LayerSpec):
        return builder.construct(value, [])
    if isinstance(value, list):
        return tuple(_to_torch(v, builder) for v in value)
    return value
