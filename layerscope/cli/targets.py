"""What a command line names, loaded and inspected: a spec (with its --set texts) or a Python-defined
model `pkg.module:Class` (with its --arg texts), and the --input texts it runs on.

The Python API takes objects; this is the command line's text, turned into calls of that API.
torch is imported only when a command needs it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from layerscope.cli.options import Options
from layerscope.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

    from layerscope.report.model import Report
    from layerscope.spec.model import InputSpec, ModelSpec

PYTHON_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")  # pkg.module:ClassOrFactory
imported_user_code = False  # set once a Python-defined model is imported: the process then ends normally


def load(target: str | None, options: Options) -> ModelSpec | nn.Module:
    """What SPEC names: a spec (file, bundled name, or the only spec here) with --model and --set,
    or with --allow-import a Python-defined model `pkg.module:Class` made with --arg."""
    from layerscope.api import load_python
    from layerscope.spec.bundled import resolve_spec
    from layerscope.spec.model import load_spec

    if target and PYTHON_TARGET.fullmatch(target) and not Path(target).exists():
        if not options.allow_import:
            raise UsageError(
                f"{target!r} names Python code, and importing it runs that code",
                hint="add --allow-import to inspect a Python-defined model",
            )
        if options.sets or options.model:
            raise UsageError("--set and --model are for spec files", hint="pass a Python model's arguments with --arg")
        global imported_user_code
        imported_user_code = True
        return load_python(target, parse_sets(list(options.args), "--arg"))
    if options.args:
        raise UsageError("--arg is for Python-defined models (pkg.module:Class)", hint="for a spec's vars, use --set")
    return load_spec(resolve_spec(target), options.model, parse_sets(list(options.sets)))


def spec_inputs(spec: ModelSpec, input_texts: Sequence[str]) -> tuple[InputSpec, ...]:
    """The spec's inputs with shapes (and dtypes) replaced by --input texts; range carries over."""
    from layerscope.api import with_shapes
    from layerscope.spec.shapes import parse_input

    return with_shapes(spec, [parse_input(text) for text in input_texts])


def inspect(
    subject: ModelSpec | nn.Module, input_texts: Sequence[str], options: Options, search: bool = True
) -> Report:
    """Build a spec for the --input texts (default: its input:), or take a Python model, and report
    on it; `search` off skips looking for inputs that fit."""
    import torch

    from layerscope import limits
    from layerscope.api import inspect_module, inspect_spec
    from layerscope.run import devices
    from layerscope.spec.model import ModelSpec
    from layerscope.spec.shapes import parse_input

    if isinstance(subject, ModelSpec):
        inputs = spec_inputs(subject, input_texts)
        return inspect_spec(subject, inputs, device=options.device, dtype=options.dtype, search=search)
    if not input_texts:
        raise UsageError("a Python-defined model needs --input", hint="e.g. --input 1x3x32x32 (or 5:int64 for ids)")
    if options.dtype != "float32":
        raise UsageError("--dtype is for spec files", hint="a Python-defined model keeps its own dtypes")
    shapes = [(shape, getattr(torch, name or "float32")) for shape, name in map(parse_input, input_texts)]
    size = sum(math.prod(shape) * dtype.itemsize for shape, dtype in shapes)
    # made where they will be used: a run that will be on meta allocates no input either
    on_meta = options.device == "meta" or (options.device == "auto" and devices.for_bytes(size).type == "meta")
    if options.device == "cpu":
        limits.check_cpu_bytes(size)
    tensors = [torch.zeros(shape, dtype=dtype, device="meta" if on_meta else "cpu") for shape, dtype in shapes]
    return inspect_module(subject, tensors, device=options.device, search=search)


def parse_sets(texts: list[str], option: str = "--set") -> dict[str, int | float | bool | str]:
    """`--set name=value` (or --arg) texts → values read as int, float, true/false, else text."""
    overrides: dict[str, int | float | bool | str] = {}
    for text in texts:
        name, sep, raw = (part.strip() for part in text.partition("="))
        if not sep or not name:
            raise UsageError(f"{option} {text!r}: expected NAME=VALUE", hint=f"e.g. {option} classes=100")
        value: int | float | bool | str = raw
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                pass
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        overrides[name] = value
    return overrides
