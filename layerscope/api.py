"""The Python API: load, build and inspect, the pipeline (spec → build → run → report) for Python users.

    import layerscope
    spec = layerscope.load("lenet")                      # a file or a bundled spec's name
    model = layerscope.build(spec)                       # a trainable nn.Module, weights initialised
    report = layerscope.inspect(spec)                    # or any nn.Module, with input_size=
    report                                               # renders as the `inspect` table (terminal, Jupyter)
    report.to_dict()                                     # the JSON contract of `inspect --format json`

Inspecting a module never changes it: a copy of it runs (run/shadow.py), on its own weights on the
CPU while they are small, on meta above (run/runner.py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, replace
from functools import partial
from inspect import signature as inspect_signature
from pathlib import Path
from typing import Any, Union

import torch
from rich.console import RenderableType
from rich.jupyter import JupyterMixin
from torch import nn

from layerscope.builder.builder import build as build_spec
from layerscope.builder.builder import spec_probe, var_probe
from layerscope.errors import RejectedInput, Source, UsageError, did_you_mean
from layerscope.render.text import plain_text
from layerscope.render.views import inspect_view
from layerscope.report.assemble import report, run_and_report, unbuilt_notes
from layerscope.report.checkpoint import read_shapes
from layerscope.report.model import Report
from layerscope.report.train_memory import Training, add_train_memory, training
from layerscope.report.weights import WeightsCheck, compare
from layerscope.run.inputs import Example, Inputs, as_inputs
from layerscope.run.inputs import make as make_inputs
from layerscope.run.runner import run_module
from layerscope.run.trace import untraced
from layerscope.spec.bundled import resolve_spec
from layerscope.spec.model import InputSpec, ModelSpec, load_spec
from layerscope.spec.shapes import DTYPES, canonical_dtype, check_elements, dtype_hint, format_shapes

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
    inputs: Any = None,
    kwargs: Mapping[str, Any] | None = None,
    dtypes: Sequence[torch.dtype | str] | None = None,
    device: str = "auto",
    dtype: str = "float32",
    seed: int = 0,
    train: bool = False,
    optimizer: str | None = None,
    momentum: float | None = None,
) -> Report:
    """The report `layerscope inspect` prints: layers, shapes, parameters, FLOPs, memory and, when
    the input does not fit, the diagnosis. `model` is a spec (object, file or bundled name) or any
    nn.Module. For a module, give
    - `inputs`: a tensor or numpy array (one argument), a tuple or list (positional arguments, each
      of any nesting), or a dict (keyword arguments); `kwargs` adds keyword arguments to either; or
    - `input_size`: a shape, a list of shapes, or a dict of keyword → shape, with `dtypes` (one per
      input, default float32); values are made by run/inputs.py's rule from `seed`;
    - neither: the module tree and parameters, without shapes or FLOPs.
    `train` adds the training memory (`train_memory`, README "Training memory") for `optimizer`
    (sgd, adam, adamw; default adam) and sgd's `momentum`.
    The module is left as it was: it runs as a copy (run/shadow.py).
    """
    asked = training(train, optimizer, momentum)
    if not isinstance(model, nn.Module):
        spec = _spec(model)
        shapes = with_shapes(spec, _shapes(input_size))
        return _shown(inspect_spec(spec, shapes, device=device, dtype=dtype, train=asked))
    if inputs is not None or kwargs:
        given = as_inputs(() if inputs is None else inputs)
        given.kwargs.update(as_inputs(dict(kwargs or {})).kwargs)
        return _shown(inspect_module(model, given, device=device, train=asked))
    return _shown(inspect_module(model, examples(input_size, dtypes), device=device, seed=seed, train=asked))


class InspectReport(Report, JupyterMixin):
    """The Report `layerscope.inspect` returns: the same data, shown as the `inspect` table by rich
    (terminals, `rich.print`) and in Jupyter. The report stage holds no rendering; this is where
    the two meet."""

    def __rich__(self) -> RenderableType:
        return inspect_view(self)

    def __str__(self) -> str:
        """The inspect table as plain text, as wide as the terminal (`print(report)`)."""
        import shutil

        return plain_text(inspect_view(self), width=shutil.get_terminal_size().columns)

    def __repr__(self) -> str:
        shapes = (
            f"{format_shapes(self.input_shapes)} → {format_shapes(self.output_shapes) or '-'}, " if self.ran else ""
        )
        failed = ", failed" if self.failure is not None else ""
        return f"<InspectReport {self.model}: {shapes}{self.total_params:,} params{failed}>"


def _shown(report: Report) -> InspectReport:
    return InspectReport(**{f.name: getattr(report, f.name) for f in fields(report)})


def inspect_spec(
    spec: ModelSpec,
    inputs: Sequence[InputSpec],
    *,
    device: str = "auto",
    dtype: str = "float32",
    search: bool = True,
    train: Training | None = None,
) -> Report:
    """Build `spec` for `inputs` and trace it; `search` off skips looking for inputs that fit;
    `train` adds the training memory."""
    if canonical_dtype(dtype) in ("float32", "float64", "float16", "bfloat16"):
        dtype = canonical_dtype(dtype) or dtype  # fp16, half: float16 (any other is the builder's error)
    built = build_spec(spec, inputs, device=device, dtype=dtype)
    report = run_and_report(
        built.model,
        built.inputs,
        name=spec.name,
        sources=built.sources,
        probe=spec_probe(spec, inputs, dtype),
        search=search,
        respec=var_probe(spec, inputs, dtype),
    )
    report.notes.extend(unbuilt_notes(built.stopped_at, built.skipped))
    if train is not None:
        add_train_memory(report, built.model, built.inputs, {}, train, device)
    return report


def inspect_module(
    model: nn.Module,
    inputs: Inputs | Sequence[Example],
    *,
    device: str = "auto",
    search: bool = True,
    seed: int = 0,
    train: Training | None = None,
) -> Report:
    """Trace a user's module on `inputs` (given, or Examples to make) and report; run/runner.py
    picks the device and confirms on real tensors what fails on meta. No inputs: the module tree
    and parameters only."""
    if not isinstance(inputs, Inputs) and not inputs:
        why = "no input given: the module tree and parameters only; shapes, FLOPs and memory need an input (--input; in Python, input_size= or inputs=)"
        bare = report(untraced(model, [], why))
        if train is not None:
            add_train_memory(bare, model, [], {}, train)  # says why there is none
        return bare
    if isinstance(inputs, Inputs):
        given = inputs
        make: Callable[[torch.device], Inputs] = given.to
        size = given.nbytes
    else:
        wanted = list(inputs)
        size = sum(e.nbytes for e in wanted)
        make = partial(make_inputs, wanted, model, seed=seed)
    made = report(run_module(model, make, size, device), search=search)
    if train is not None and made.ran and made.failure is None:
        on = make(torch.device(made.device))
        add_train_memory(made, model, on.args, on.kwargs, train, device)
    elif train is not None:
        add_train_memory(made, model, [], {}, train, device)  # says why there is none
    return made


def check_weights(
    model: nn.Module | ModelSpec | str | Path, checkpoint: str | Path, input_size: InputSize = None
) -> WeightsCheck:
    """A checkpoint file's keys and shapes against `model`'s state_dict, as `load_state_dict(strict=True)`
    sees them: missing, unexpected and shape-mismatched keys. Nothing is allocated: a spec is built
    on the meta device (for `input_size`, default its input:), the checkpoint read without its data."""
    if isinstance(model, nn.Module):
        return check_module_weights(model, checkpoint)
    spec = _spec(model)
    return check_spec_weights(spec, with_shapes(spec, _shapes(input_size)), checkpoint)


def check_spec_weights(spec: ModelSpec, inputs: Sequence[InputSpec], checkpoint: str | Path) -> WeightsCheck:
    """`check_weights` for a spec built on meta for `inputs`."""
    built = build_spec(spec, inputs, device="meta")
    if built.stopped_at is not None:
        raise RejectedInput(
            f"{spec.name} does not accept its input at {built.stopped_at}, so the names and shapes of its later layers are unknown",
            hint="run `layerscope inspect` on it for the diagnosis",
        )
    return _compared(spec.name, built.model, checkpoint)


def check_module_weights(model: nn.Module, checkpoint: str | Path) -> WeightsCheck:
    """`check_weights` for a user's module: its state_dict is read, never changed."""
    return _compared(type(model).__name__, model, checkpoint)


def _compared(name: str, model: nn.Module, checkpoint: str | Path) -> WeightsCheck:
    found, notes, versions = read_shapes(Path(checkpoint))
    state = model.state_dict(keep_vars=True)
    first: dict[int, str] = {}
    aliases = {key: first.setdefault(id(value), key) for key, value in state.items()}
    check = compare(
        name,
        str(checkpoint),
        _state_shapes(state),
        found,
        {k: v for k, v in aliases.items() if k != v},
        filled=_filled_by_load(model, state, versions),
    )
    check.notes.extend(notes)
    return check


def _filled_by_load(model: nn.Module, state: Mapping[str, Any], versions: dict[str, int] | None) -> set[str]:
    """Keys load_state_dict fills in itself: a BatchNorm's num_batches_tracked, where the checkpoint's
    metadata gives that module no version 2 (a plain dict has none), as torch's BatchNorm does."""
    filled = set()
    for key in state:
        prefix, _, leaf = key.rpartition(".")
        if leaf != "num_batches_tracked" or (versions or {}).get(prefix, 0) >= 2:
            continue
        if getattr(model.get_submodule(prefix), "track_running_stats", False):
            filled.add(key)
    return filled


def _state_shapes(state: Mapping[str, Any]) -> dict[str, list[int] | None]:
    """Each state_dict key's shape; None for a lazy module's parameter not made yet (any shape loads)."""
    shapes: dict[str, list[int] | None] = {}
    for key, value in state.items():
        uninitialised = isinstance(value, nn.parameter.UninitializedTensorMixin)
        shapes[key] = None if uninitialised or not isinstance(value, torch.Tensor) else list(value.shape)
    return shapes


def load_python(target: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """The module named by `pkg.module:ClassOrFactory` (or an nn.Module instance there), made with
    `kwargs`. Importing runs the package's code: the CLI asks for --allow-import first."""
    module_name, _, attr = target.rpartition(":")
    if module_name.endswith(".py"):
        found: Any = _import_file(Path(module_name))
        module_name = Path(module_name).stem
    else:
        found = _import_module(module_name)
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


def _import_file(path: Path) -> Any:
    """A Python file imported as `python path/to/file.py` would see it: its folder first on
    sys.path, so its own imports of the files beside it work; under its file name as a module."""
    import importlib.util

    if not path.is_file():
        raise UsageError(f"{path}: no such file", hint="name a .py file, as path/to/models.py:Class")
    folder = str(path.resolve().parent)
    # Files of another folder imported before (v1/helpers.py, for v1/models.py) must not stand in
    # for this folder's own (v2/helpers.py): `diff v1/models.py:Net v2/models.py:Net` compares two.
    for earlier, where in list(_FILE_MODULES.items()):
        if where != folder and sys.modules.get(earlier) is not None:
            del sys.modules[earlier]
            del _FILE_MODULES[earlier]
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    before = set(sys.modules)
    name = path.stem if path.stem.isidentifier() else "_layerscope_user_module"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up by name
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        sys.modules.pop(name, None)
        raise UsageError(f"importing {path} failed: {e}", hint=f"install {e.name!r}" if e.name else None) from None
    except Exception as e:  # noqa: BLE001 - the user's file failed while importing
        sys.modules.pop(name, None)
        raise UsageError(f"importing {path} raised {type(e).__name__}: {e}") from None
    for added in set(sys.modules) - before:  # the file and what it imported from beside it
        origin = getattr(sys.modules[added], "__file__", None) or ""
        if added == name or str(Path(origin).resolve()).startswith(folder + "/"):
            _FILE_MODULES[added] = folder
    return module


_FILE_MODULES: dict[str, str] = {}  # modules imported from a user's file path, and the folder they came from


def _import_module(module_name: str) -> Any:
    """`pkg.module`, imported as `python -m` would find it: the current directory first."""
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: modules beside the user
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        missing = getattr(e, "name", None)
        if missing and module_name != missing and not module_name.startswith(missing + "."):
            raise UsageError(f"importing {module_name!r} failed: {e}", hint=f"install {missing!r}") from None
        raise UsageError(
            f"cannot import {module_name!r}: {e}", hint="run from the directory that holds it, or install it"
        ) from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing
        raise UsageError(f"importing {module_name!r} raised {type(e).__name__}: {e}") from None


def _signature(obj: Any) -> str:
    try:
        return str(inspect_signature(obj))
    except (TypeError, ValueError):
        return "(unknown)"


def with_shapes(spec: ModelSpec, shapes: Sequence[tuple[tuple[int, ...], str | None]]) -> tuple[InputSpec, ...]:
    """The spec's inputs with their shapes (and dtypes, where given) replaced; range carries over."""
    if not shapes:
        return spec.inputs
    if spec.inputs and len(shapes) > len(spec.inputs):
        names = ", ".join(i.name for i in spec.inputs)
        raise UsageError(
            f"{spec.name} takes {len(spec.inputs)} input(s) ({names}), got {len(shapes)} --input",
            hint="give one --input per input of the spec, in its order",
        )
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

    def size(d: Any) -> bool:
        return isinstance(d, int) and not isinstance(d, bool) and d >= 0

    if isinstance(sizes, Sequence) and sizes and all(isinstance(d, int) for d in sizes):
        sizes = [sizes]
    if not isinstance(sizes, Sequence) or not all(isinstance(s, Sequence) and all(map(size, s)) for s in sizes):
        raise UsageError(f"input_size {input_size!r} is not a shape", hint="e.g. (1, 3, 32, 32) or [(2, 16), (2, 16)]")
    for s in sizes:
        check_elements(s, f"input_size {tuple(s)!r}")
    return [(tuple(s), None) for s in sizes]


def examples(input_size: InputSize | Mapping[str, Shape], dtypes: Any = None) -> list[Example]:
    """`input_size` (a shape, shapes, or keyword → shape) and `dtypes` (one each) as Examples."""
    named = dict(input_size) if isinstance(input_size, Mapping) else None
    if named is not None and not named:
        return []
    shapes = _shapes(list(named.values()) if named is not None else input_size)
    names: list[str | None] = list(named) if named is not None else [None] * len(shapes)
    if isinstance(dtypes, (torch.dtype, str)):
        dtypes = [dtypes] * len(shapes)  # one dtype for every input
    if isinstance(dtypes, Mapping):
        if named is None or set(dtypes) != set(named):
            raise UsageError(
                "dtypes= by name needs input_size= by the same names", hint="or give a list, one per input"
            )
        dtypes = [dtypes[name] for name in named]
    if dtypes is not None and not isinstance(dtypes, Sequence):
        raise UsageError(f"dtypes {dtypes!r} is not a dtype or a list of them", hint="e.g. dtypes=[torch.long]")
    kinds = list(dtypes or [])
    if kinds and len(kinds) != len(shapes):
        raise UsageError(f"{len(kinds)} dtypes for {len(shapes)} inputs", hint="give one dtype per input")
    return [
        Example(shape, _torch_dtype(kinds[i]) if kinds else torch.float32, names[i])
        for i, (shape, _) in enumerate(shapes)
    ]


def _torch_dtype(kind: Any) -> torch.dtype:
    name = str(kind).removeprefix("torch.")
    if name not in DTYPES:
        raise UsageError(f"unknown dtype {kind!r}", hint=dtype_hint(name))
    return getattr(torch, name)


__all__ = ["build", "check_weights", "inspect", "load"]
