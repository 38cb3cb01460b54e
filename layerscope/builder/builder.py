"""Build stage: ModelSpec → torch.nn.Module whose submodule names are the spec's layer names.

In-dims left out of the spec are read off the shapes that flow through the model while it is
being built, so each layer is run once on example inputs as soon as it exists. The steps live in
their own modules: inputs.py (example inputs), construct.py (one layer's module), ties.py (`use:`
and `tie:`), budget.py (the CPU budget) and modules.py (SpecModule, Built).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from layerscope._torch_compat import no_init
from layerscope.builder.budget import Budget
from layerscope.builder.construct import Constructor
from layerscope.builder.inputs import FLOAT_DTYPES, TORCH_DTYPES, input_dtype, make_inputs
from layerscope.builder.modules import Built, SpecModule, inputs_by_name
from layerscope.builder.ties import Registry
from layerscope.errors import LayerscopeError, Source, SpecError, UsageError, did_you_mean
from layerscope.run import devices
from layerscope.run.counting import OpCounter
from layerscope.run.trace import nbytes
from layerscope.spec.layer_spec import LayerSpec
from layerscope.spec.model import InputSpec, ModelSpec
from layerscope.spec.shapes import canonical_dtype

__all__ = ["build", "spec_probe", "var_probe"]
MAX_VAR_TRIES = 4  # rebuilds a --set hint may cost


def build(
    spec: ModelSpec,
    inputs: Sequence[InputSpec] | None = None,
    device: str = "auto",
    dtype: str = "float32",
    *,
    initialise: bool = False,
) -> Built:
    """Build `spec` for `inputs` (default: the spec's own input:) on `device` (auto, cpu or meta).

    auto: see run/devices.py. `dtype` is the parameters' and the floating inputs' dtype.
    `initialise`: weights as torch.nn initialises them (to train), not uninitialised storage (to
    inspect); only on a named device, since auto may start again on meta.
    """
    given, dtype = dtype, canonical_dtype(dtype) or dtype  # fp16, half, torch.float16: float16
    if dtype not in FLOAT_DTYPES:
        hint = did_you_mean(given, FLOAT_DTYPES) or f"{', '.join(FLOAT_DTYPES)} (or fp32, fp16, bf16, half)"
        what = f"--dtype {given!r} is not a floating dtype, as parameters need" if canonical_dtype(given) else ""
        raise UsageError(what or f"unknown --dtype {given!r}", hint=hint)
    inputs = tuple(inputs) if inputs is not None else spec.inputs
    if not inputs:
        raise SpecError(
            f"{spec.name} declares no input: and none was given",
            source=spec.source,
            hint="add input: {shape: [...]} or pass --input, e.g. --input 1x3x32x32",
        )
    if device == "auto" and not initialise:
        return _build_auto(spec, inputs, dtype)
    named = devices.named("cpu" if device == "auto" else device)
    return _Builder(spec, named, TORCH_DTYPES[dtype], initialise=initialise).run(inputs)


def _build_auto(spec: ModelSpec, inputs: Sequence[InputSpec], dtype: str = "float32") -> Built:
    """On the CPU within devices' budgets, else again on meta."""
    try:
        return _Builder(spec, torch.device("cpu"), TORCH_DTYPES[dtype], budgeted=True).run(inputs)
    except devices.OverBudget:
        return _Builder(spec, torch.device("meta"), TORCH_DTYPES[dtype]).run(inputs)


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


def var_probe(
    spec: ModelSpec, inputs: Sequence[InputSpec], dtype: str = "float32"
) -> Callable[[Sequence[tuple[int, int]]], list[tuple[str, int]]]:
    """A diagnose probe for --set hints: given (a size a layer has, the size that would fit) pairs, the
    vars whose value is the first and which, set to the second as --set would, make the whole spec
    build and run on the same inputs (the spec's own, made again, when no --input replaced them)."""
    own_inputs = tuple(inputs) == spec.inputs

    def probe(changes: Sequence[tuple[int, int]]) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        tries = 0
        for old, new in changes:
            for name, value in spec.vars.items():
                if spec.with_vars is None or type(value) is not int or value != old or tries >= MAX_VAR_TRIES:
                    continue
                tries += 1
                try:
                    other = spec.with_vars({name: new})
                    built = _build_auto(other, other.inputs if own_inputs else inputs, dtype)
                except LayerscopeError:  # the var feeds something that cannot take the new value
                    continue
                if built.stopped_at is None:
                    found.append((name, new))
        return found

    return probe


class _Builder:
    """One build: walks the spec's containers, making each layer's module and running it at once."""

    def __init__(
        self,
        spec: ModelSpec,
        device: torch.device,
        dtype: torch.dtype,
        budgeted: bool = False,
        initialise: bool = False,
    ):
        self.spec = spec
        self.device = device
        self.dtype = dtype
        # within devices.CPU_BUDGET_BYTES and CPU_BUDGET_MACS (else devices.OverBudget), on a named CPU limits.CPU_BYTES
        self.budget = Budget(budgeted, on_cpu=device.type == "cpu")
        self.constructor = Constructor(device, dtype, self.budget, initialise)
        self.initialise = initialise
        self.registry = Registry()
        self.sources: dict[str, Source] = {}
        self.calls_again: dict[str, int] = {}  # a module's qualified name → its calls by a `use:` without a name
        self.stopped_at: str | None = None
        self.skipped: list[str] = []

    def run(self, inputs: Sequence[InputSpec]) -> Built:
        """The whole model, built for and run once on example `inputs`."""
        self.budget.charge(sum(torch.Size(i.shape).numel() * input_dtype(i, self.dtype).itemsize for i in inputs))
        tensors = make_inputs(inputs, self.device, self.dtype)
        # on meta, common ops are answered by shape (run/counting.py); on the CPU they just run
        quick = OpCounter() if self.device.type == "meta" else contextlib.nullcontext()
        with torch.no_grad(), warnings.catch_warnings(), quick:
            warnings.simplefilter("ignore")  # the run stage records warnings; building repeats them
            model, _ = self.container(
                self.spec.name, self.spec.layers, [i.name for i in inputs], tensors, "", self.spec.output
            )
        return Built(model, tensors, self.sources, self.stopped_at, self.skipped, self.constructor.recipes)

    def container(
        self,
        type_name: str,
        layers: Sequence[LayerSpec],
        input_names: Sequence[str],
        xs: Sequence[Any],
        prefix: str,
        output: str | None,
    ) -> tuple[SpecModule, Any]:
        """A SpecModule of `layers` run on `xs`, and its output; once a layer fails, the rest are skipped."""
        module = SpecModule(type_name, input_names, output)
        env = inputs_by_name(input_names, xs)
        out: Any = xs[0]
        for index, layer in enumerate(layers):
            if self.stopped_at is not None:
                self.skipped.extend(prefix + later.name for later in layers[index:])
                return module, None
            qualname = prefix + layer.name
            if layer.tensor is not None:  # a free tensor: reads nothing, yields itself
                out = env[layer.name] = self.constructor.free_tensor(layer)
                module.add_tensor(layer.name, out, persistent=layer.tensor.flag)
                self.registry.add_tensor(qualname, out)
                continue
            args = [env[i] for i in layer.inputs] if layer.inputs else [out]
            if layer.use is not None:
                child = self._call_again(module, layer, prefix)
            else:
                if layer.is_container:
                    child, out = self.container(
                        layer.op, layer.layers, layer.input_names, args, qualname + ".", layer.output
                    )
                else:
                    child = self.registry.tie(self.constructor.construct(layer, args), layer, prefix)
                module.add_node(layer.name, child, layer.inputs)
                self.registry.add(qualname, child)
            self.sources[qualname] = layer.source
            if self.stopped_at is not None:
                continue  # a nested Sequential stopped inside; the loop records what is left
            if not layer.is_container:
                result = self._run_layer(child, args, qualname)
                if self.stopped_at is not None:
                    continue
                out = result
            env[layer.name] = out
        return module, (out if output is None else env[output])

    def _call_again(self, module: SpecModule, layer: LayerSpec, prefix: str) -> nn.Module:
        """A `use:` layer's module, added to `module`: under a second name when the spec gives one, or
        when the module is registered outside `module` (which must then hold it, as Python would)."""
        child, path = self.registry.shared(layer, prefix)
        if layer.alias or path is None:
            module.add_node(layer.name, child, layer.inputs)
            self.registry.add(prefix + layer.name, child)
        else:
            module.add_call(layer.name, path, layer.inputs)
            self.registry.add(prefix + layer.name, child, prefix + path)
            calls = self.calls_again[prefix + path] = self.calls_again.get(prefix + path, 0) + 1
            self.sources[f"{prefix}{path}#{calls}"] = layer.source  # where the run stage looks for this call
        return child

    def _run_layer(self, child: nn.Module, args: list[Any], qualname: str) -> Any:
        """`child`'s output on `args`, or None with the build stopped at `qualname` when its forward fails."""
        if isinstance(child, LazyModuleMixin) and self.device.type != "meta":  # weights made on this call
            self.budget.charge(self.constructor.lazy_bytes(child, args))
        if self.budget.budgeted:  # the estimate only decides whether the CPU run goes on
            self.budget.charge(macs=devices.estimated_macs(child, args))
        try:
            with self._forward_context(child):
                out = child(*args)
        except Exception:  # noqa: BLE001 - the run stage re-runs it, the report stage diagnoses it
            self.stopped_at = qualname
            return None
        self.budget.charge(nbytes(out))
        return out

    def _forward_context(self, child: nn.Module) -> contextlib.AbstractContextManager[Any]:
        """How a layer runs while it is built. A lazy layer makes its weights on its first call: without
        initialising them for the tables, with torch's initialisers for a model to train. For a model
        to train, the run must leave no trace: in eval mode (BatchNorm's running statistics stay as
        constructed) and drawing nothing from the global RNG, or the layers built after it would
        draw other initial weights than torch.nn's construction gives."""
        lazy = isinstance(child, LazyModuleMixin)
        if not self.initialise:  # in eval mode as the run stage traces it, so both agree on what fits
            return _in_eval(child, no_init() if lazy else contextlib.nullcontext())
        # a lazy module's first call draws its initial weights: those draws stay; any other leaves the RNG as it was
        return _in_eval(child, contextlib.nullcontext() if lazy else torch.random.fork_rng(devices=[]))


@contextlib.contextmanager
def _in_eval(module: nn.Module, inner: contextlib.AbstractContextManager[Any]) -> Iterator[None]:
    """Run `module` in eval mode within `inner`, then give each submodule its mode back. A BatchNorm
    fed one value per channel fails in training mode only; the trace runs in eval mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with inner:
            yield
    finally:
        for m, training in modes:
            m.training = training
