"""What a command line names, loaded and inspected: a spec (with its --set texts) or a Python-defined
model `pkg.module:Class` (with its --arg texts), and the --input texts it runs on.

The Python API takes objects; this is the command line's text, turned into calls of that API.
torch is imported only when a command needs it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import typer

from layerscope import limits
from layerscope.cli.options import Options
from layerscope.errors import UsageError, inert

if TYPE_CHECKING:
    from torch import nn

    from layerscope.report.model import Report
    from layerscope.run.inputs import Example
    from layerscope.spec.model import InputSpec, ModelSpec

# pkg.module:ClassOrFactory, or path/to/file.py:ClassOrFactory
PYTHON_TARGET = re.compile(r"(?:[A-Za-z_][\w.]*|[^:]+\.py):[A-Za-z_][\w.]*")
imported_user_code = False  # set once a Python-defined model is imported: the process then ends normally


def names_python(target: str | None) -> TypeGuard[str]:
    """Whether SPEC names a Python-defined model (`pkg.module:Class`, `file.py:Class`), not a file."""
    if not target or PYTHON_TARGET.fullmatch(target) is None:
        return False
    return not Path(target).exists()


def spec_file(target: str | None) -> Path:
    """The spec file SPEC names (a path, a bundled name, the only spec here); a bundled spec standing
    in for a file name that is not here is said on stderr, so JSON and CSV on stdout stay data."""
    from layerscope.spec.bundled import resolve_spec_noting

    path, note = resolve_spec_noting(target)
    if note is not None:
        typer.echo(f"note: {inert(note, newlines=False)}", err=True)
    return path


def load(target: str | None, options: Options) -> ModelSpec | nn.Module:
    """What SPEC names: a spec (file, bundled name, or the only spec here) with --model and --set,
    or with --allow-import a Python-defined model `pkg.module:Class` made with --arg."""
    from layerscope.api import load_python
    from layerscope.spec.model import load_spec

    if names_python(target):
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
    if target and target.endswith(".py") and ":" not in target:
        raise UsageError(
            f"{target} is a Python file: name the model in it",
            hint=f"{target}:ClassOrFactory, with --allow-import",
        )
    if options.args:
        raise UsageError("--arg is for Python-defined models (pkg.module:Class)", hint="for a spec's vars, use --set")
    return load_spec(spec_file(target), options.model, parse_sets(list(options.sets)))


def spec_inputs(spec: ModelSpec, input_texts: Sequence[str]) -> tuple[InputSpec, ...]:
    """The spec's inputs with shapes (and dtypes) replaced by --input texts; range carries over."""
    from layerscope.api import with_shapes
    from layerscope.spec.shapes import parse_input

    return with_shapes(spec, [parse_input(text) for text in input_texts])


def input_texts(spec: ModelSpec) -> list[str]:
    """A spec's own inputs as --input texts (`1x1x32x32:float32`), for a Python model compared with it."""
    return ["x".join(map(str, i.shape)) + f":{i.dtype}" for i in spec.inputs]


def inspect(
    subject: ModelSpec | nn.Module, input_texts: Sequence[str], options: Options, search: bool = True
) -> Report:
    """Build a spec for the --input texts (default: its input:), or take a Python model, and report
    on it; `search` off skips looking for inputs that fit."""
    from layerscope.api import inspect_module, inspect_spec
    from layerscope.report.train_memory import training
    from layerscope.spec.model import ModelSpec

    train = training(*options.train)
    if isinstance(subject, ModelSpec):
        inputs = spec_inputs(subject, input_texts)
        return inspect_spec(subject, inputs, device=options.device, dtype=options.dtype, search=search, train=train)
    if options.dtype != "float32":
        raise UsageError("--dtype is for spec files", hint="a Python-defined model keeps its own dtypes")
    made = examples(input_texts)
    return inspect_module(subject, made, device=options.device, search=search, seed=options.seed, train=train)


def examples(input_texts: Sequence[str]) -> list[Example]:
    """--input texts for a Python model: `1x3x32x32`, `5:int64`, `attention_mask=1x128:int64`
    (a keyword argument); positional ones first, in order, keywords after."""
    import torch

    from layerscope.run.inputs import Example
    from layerscope.spec.shapes import parse_input

    made = []
    for text in input_texts:
        name, sep, rest = text.partition("=")
        if sep and not rest.strip():
            raise UsageError(f"--input {text!r}: no shape after '='", hint="e.g. attention_mask=1x128:int64")
        if sep and not name.isidentifier():
            raise UsageError(
                f"--input {text!r}: {name!r} is not a keyword name", hint="e.g. attention_mask=1x128:int64"
            )
        shape, dtype = parse_input(rest if sep else text)
        made.append(Example(shape, getattr(torch, dtype or "float32"), name if sep else None))
    names = [e.name for e in made if e.name]
    if len(names) != len(set(names)):
        raise UsageError(f"--input names {sorted({n for n in names if names.count(n) > 1})[0]!r} twice")
    return made


def parse_sets(texts: list[str], option: str = "--set") -> dict[str, Any]:
    """`--set name=value` (or --arg) texts → values. --set reads int, float, true/false, else text;
    --arg reads a Python literal (None, True, 3, 1e-3, [1, 2], 'text'), else text."""
    overrides: dict[str, Any] = {}
    for text in texts:
        name, sep, raw = (part.strip() for part in text.partition("="))
        if not sep or not name:
            raise UsageError(f"{option} {text!r}: expected NAME=VALUE", hint=f"e.g. {option} classes=100")
        if option == "--arg" and name in overrides:
            raise UsageError(f"--arg {name} given twice", hint="give each keyword argument once")
        overrides[name] = _literal(raw) if option == "--arg" else _scalar(raw)
    return overrides


def _scalar(raw: str) -> int | float | bool | str:
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def _literal(raw: str) -> Any:
    """A Python literal by ast.literal_eval (no code runs; a bounded size), else the text itself."""
    if len(raw) > limits.STRING.value:
        raise limits.STRING.error(f"--arg value of {len(raw)} characters")
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw
