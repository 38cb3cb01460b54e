"""The Python API: load, build and inspect, the pipeline (spec → build → run → report) for Python users.

    import layerscope
    spec = layerscope.load("lenet")                      # a file or a bundled spec's name
    model = layerscope.build(spec)                       # a trainable nn.Module, weights initialised
    report = layerscope.inspect(spec)                    # or any nn.Module, with input_size=
    report                                               # renders as the `inspect` table (terminal, Jupyter)
    report.to_dict()                                     # the JSON contract of `inspect --format json`

Inspecting a module never changes it: it runs on stand-ins for its weights (devices.stand_in),
uninitialised on the CPU while they are small, on meta above, and its modes and hooks are restored.
"""

from __future__ import annotations

import copy
import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from inspect import signature as inspect_signature
from pathlib import Path
from typing import Any, Union

import torch
from rich.console import RenderableType
from rich.jupyter import JupyterMixin
from torch import Tensor, nn

from layerscope import limits
from layerscope.builder.builder import build as build_spec
from layerscope.builder.builder import spec_probe
from layerscope.errors import Source, UsageError, did_you_mean
from layerscope.render.views import inspect_view
from layerscope.report.assemble import report, run_and_report, unbuilt_notes
from layerscope.report.model import Report
from layerscope.run import devices
from layerscope.run.trace import nbytes, untraced
from layerscope.spec.bundled import resolve_spec
from layerscope.spec.model import InputSpec, ModelSpec, load_spec

Shape = Sequence[int]
InputSize = Union[Shape, Sequence[Shape], None]  # noqa: UP007 - a runtime alias


def load(path_or_name: str | Path, *, model: str | None = None, **overrides: Any) -> ModelSpec:
    """A spec file, or a bundled spec's name, parsed and checked; `overrides` set its vars."""
    return load_spec(resolve_spec(str(path_or_name)), model, overrides)


def build(spec: ModelSpec | str | Path, input_size: InputSize = None, *, dtype: str = "float32") -> nn.Module:
    """The spec as a real nn.Module on the CPU, with torch's usual initial weights, ready to train.

    In-dims left out of the spec are read off `input_size` (default: the spec's input:).
    """
    spec = _spec(spec)
    return build_spec(spec, with_shapes(spec, _shapes(input_size)), device="cpu", dtype=dtype, initialise=True).model


def inspect(
    model: nn.Module | ModelSpec | str | Path,
    input_size: InputSize = None,
    *,
    inputs: Sequence[Tensor] | None = None,
    device: str = "auto",
    dtype: str = "float32",
) -> Report:
    """The report `layerscope inspect` prints: layers, shapes, parameters, FLOPs, memory and, when
    the input does not fit, the diagnosis. `model` is a spec (object, file or bundled name) or any
    nn.Module; for a module, give `input_size` (float32 inputs) or `inputs` (tensors of any dtype).
    """
    if not isinstance(model, nn.Module):
        spec = _spec(model)
        return _shown(inspect_spec(spec, with_shapes(spec, _shapes(input_size)), device=device, dtype=dtype))
    if inputs is None:
        shapes = _shapes(input_size)
        if not shapes:
            raise UsageError("inspecting a module needs input_size= or inputs=", hint="e.g. input_size=(1, 3, 32, 32)")
        inputs = [torch.empty(shape) for shape, _ in shapes]
    return _shown(inspect_module(model, list(inputs), device=device))


class InspectReport(Report, JupyterMixin):
    """The Report `layerscope.inspect` returns: the same data, shown as the `inspect` table by rich
    (terminals, `rich.print`) and in Jupyter. The report stage holds no rendering; this is where
    the two meet."""

    def __rich__(self) -> RenderableType:
        return inspect_view(self)


def _shown(report: Report) -> InspectReport:
    return InspectReport(**{f.name: getattr(report, f.name) for f in fields(report)})


def inspect_spec(
    spec: ModelSpec, inputs: Sequence[InputSpec], *, device: str = "auto", dtype: str = "float32", search: bool = True
) -> Report:
    """Build `spec` for `inputs` and trace it; `search` off skips looking for inputs that fit."""
    built = build_spec(spec, inputs, device=device, dtype=dtype)
    probe = spec_probe(spec, inputs, dtype)
    report = run_and_report(
        built.model, built.inputs, name=spec.name, sources=built.sources, probe=probe, search=search
    )
    report.notes.extend(unbuilt_notes(built.stopped_at, built.skipped))
    return report


def inspect_module(model: nn.Module, inputs: list[Tensor], *, device: str = "auto", search: bool = True) -> Report:
    """Trace a user's module on stand-ins for its weights, leaving it as it was.

    auto: uninitialised CPU tensors within the budgets of run/devices.py (the work checked before
    each leaf runs), else meta, where nothing is allocated or computed.
    """
    if isinstance(model, torch.jit.ScriptModule):  # takes no hooks: no layer can be observed
        why = "a TorchScript module takes no hooks: its parameters are listed; for shapes, inspect the Python module"
        return report(untraced(model, inputs, why))
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters()):
        # lazy weights take their shapes on the first call: a copy's, run as it is, not the user's
        return run_and_report(copy.deepcopy(model), inputs, search=search)
    if device == "auto":
        size = nbytes([*model.parameters(), *model.buffers(), *inputs])
        # all its weights applied at every position of the input: a first guess, checked as it runs
        guess = devices.estimated_macs(model, inputs)
        if devices.for_bytes(size).type == "cpu" and guess <= devices.CPU_BUDGET_MACS:
            try:
                with devices.cpu_work_budget(model):
                    return _trace_on(model, inputs, torch.device("cpu"), search)
            except devices.OverBudget:
                pass
        return _trace_on(model, inputs, torch.device("meta"), search)
    return _trace_on(model, inputs, devices.named(device), search)


def _trace_on(model: nn.Module, inputs: list[Tensor], device: torch.device, search: bool) -> Report:
    if device.type == "cpu":
        limits.check_cpu_bytes(nbytes([*model.parameters(), *model.buffers(), *inputs]))
    moved = [t.to(device) if t.device != device else t for t in inputs]
    return run_and_report(model, moved, weights=devices.stand_in(model, device), search=search)


def load_python(target: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """The module named by `pkg.module:ClassOrFactory` (or an nn.Module instance there), made with
    `kwargs`. Importing runs the package's code: the CLI asks for --allow-import first."""
    module_name, _, attr = target.partition(":")
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: modules beside the user
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageError(
            f"cannot import {module_name!r}: {e}", hint="run from the directory that holds it, or install it"
        ) from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing
        raise UsageError(f"importing {module_name!r} raised {type(e).__name__}: {e}") from None
    for part in attr.split("."):
        if not hasattr(found, part):
            names = [n for n in dir(found) if not n.startswith("_")]
            raise UsageError(
                f"{module_name!r} has no {part!r}", hint=did_you_mean(part, names) or "name a class or function in it"
            )
        found = getattr(found, part)
    kwargs = dict(kwargs or {})
    if isinstance(found, nn.Module):
        if kwargs:
            raise UsageError(f"{target} is a module instance; --arg is for a class or factory")
        return found
    if not callable(found):
        raise UsageError(f"{target} is a {type(found).__name__}, not a class or factory of nn.Module")
    try:
        model = found(**kwargs)
    except TypeError as e:
        raise UsageError(f"{target}: {e}", hint=f"its arguments: {_signature(found)}") from None
    except Exception as e:  # noqa: BLE001 - the user's constructor failed
        raise UsageError(f"{target}(...) raised {type(e).__name__}: {e}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"{target} gave a {type(model).__name__}, not an nn.Module")
    return model


def _signature(obj: Any) -> str:
    try:
        return str(inspect_signature(obj))
    except (TypeError, ValueError):
        return "(unknown)"


def with_shapes(spec: ModelSpec, shapes: Sequence[tuple[tuple[int, ...], str | None]]) -> tuple[InputSpec, ...]:
    """The spec's inputs with their shapes (and dtypes, where given) replaced; range carries over."""
    if not shapes:
        return spec.inputs
    inputs = []
    for i, (shape, dtype) in enumerate(shapes):
        if i < len(spec.inputs):
            base = spec.inputs[i]
        else:
            base = InputSpec(f"input{i}" if i else "input", shape, "float32", None, Source("--input", 1, 1))
        inputs.append(replace(base, shape=shape, dtype=dtype or base.dtype))
    return tuple(inputs)


def _spec(spec: ModelSpec | str | Path) -> ModelSpec:
    return spec if isinstance(spec, ModelSpec) else load(spec)


def _shapes(input_size: InputSize) -> list[tuple[tuple[int, ...], str | None]]:
    """(1, 3, 32, 32) is one input; [(2, 16), (2, 16)] two."""
    if input_size is None:
        return []
    sizes: Sequence[Any] = input_size
    if all(isinstance(d, int) for d in sizes):
        sizes = [sizes]
    if not all(isinstance(s, Sequence) and all(isinstance(d, int) and d >= 0 for d in s) for s in sizes):
        raise UsageError(f"input_size {input_size!r} is not a shape", hint="e.g. (1, 3, 32, 32) or [(2, 16), (2, 16)]")
    return [(tuple(s), None) for s in sizes]


__all__ = ["build", "inspect", "load"]
