"""CLI stage: a thin typer layer. Parses options, calls spec → build → trace, picks a renderer.

torch is imported only inside the commands that need it, so `--help` and `list` start fast.
"""

from __future__ import annotations

import enum
import gc
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from layerscope import __version__
from layerscope.errors import LayerscopeError, UsageError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from torch import nn

    from layerscope.report.model import Report
    from layerscope.spec.model import InputSpec, ModelSpec

T = TypeVar("T")

app = typer.Typer(
    name="layerscope",
    help="Look inside a PyTorch model before you train it: layers, shapes and parameters from a YAML spec.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


SpecArg = Annotated[
    str | None,
    typer.Argument(
        help="Spec file, or a bundled spec's name (see `layerscope list`). Omit it when the current directory holds exactly one .yaml spec.",
        show_default=False,
        metavar="SPEC",
        autocompletion=lambda incomplete: complete_spec(incomplete),
    ),
]
InputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="SHAPE",
        help="Input shape such as 1x3x32x32, optionally :dtype (5:int64). Repeat for several inputs. Default: the spec's input:.",
    ),
]
FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format", "-f", help="table for people; json for scripts; markdown for docs and PRs; csv for spreadsheets."
    ),
]
ExportOpt = Annotated[
    Path | None,
    typer.Option(
        "--export",
        metavar="FILE",
        help="Also write the table to FILE.svg or FILE.html (rich's exporters), whatever --format prints.",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", metavar="NAME", help="Which model, when the file holds several (---).")
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="DEVICE",
        help="auto (real CPU tensors up to 256 MiB and 0.5 G multiply-adds, else meta), cpu, meta or cuda.",
    ),
]
DepthOpt = Annotated[
    int | None,
    typer.Option("--depth", "-d", min=0, metavar="N", help="Show layers nested at most this deep (0: the model only)."),
]
DtypeOpt = Annotated[
    str,
    typer.Option("--dtype", metavar="DTYPE", help="Parameter and input dtype: float32, bfloat16, float16 or float64."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", metavar="NAME=VALUE", help="Override a var of the spec, e.g. --set classes=100. Repeatable."
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks instead of one-line errors.")]
AllowImportOpt = Annotated[
    bool,
    typer.Option(
        "--allow-import", help="Let SPEC be Python code, pkg.module:ClassOrFactory: importing it runs that code."
    ),
]
ArgOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--arg", "-a", metavar="NAME=VALUE", help="A keyword argument for a Python-defined model's class or factory."
    ),
]
PYTHON_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")  # pkg.module:ClassOrFactory


def complete_spec(incomplete: str) -> list[str]:
    """Shell completion for SPEC: bundled names and the .yaml files here that start with `incomplete`."""
    from layerscope.spec.bundled import SPEC_SUFFIXES, bundled_specs

    names = {b.name for b in bundled_specs()}
    names |= {p.name for p in Path.cwd().iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file()}
    return sorted(n for n in names if n.startswith(incomplete))


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


def _inputs_for(spec: ModelSpec, texts: list[str]) -> tuple[InputSpec, ...]:
    """The spec's inputs with shapes (and dtypes) replaced by --input; dtype and range carry over."""
    from layerscope.api import with_shapes
    from layerscope.spec.shapes import parse_input

    return with_shapes(spec, [parse_input(text) for text in texts])


@dataclass(frozen=True)
class Options:
    """What every spec command takes besides the spec and its inputs."""

    model: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    sets: tuple[str, ...] = ()
    allow_import: bool = False
    args: tuple[str, ...] = ()  # --arg, for a Python-defined model


def _load(spec_arg: str | None, options: Options) -> ModelSpec | nn.Module:
    """The spec SPEC names, or with --allow-import the Python-defined model `pkg.module:Class`."""
    from layerscope.spec.bundled import resolve_spec
    from layerscope.spec.model import load_spec

    if spec_arg and PYTHON_TARGET.fullmatch(spec_arg) and not Path(spec_arg).exists():
        if not options.allow_import:
            raise UsageError(
                f"{spec_arg!r} names Python code, and importing it runs that code",
                hint="add --allow-import to inspect a Python-defined model",
            )
        if options.sets or options.model:
            raise UsageError("--set and --model are for spec files", hint="pass a Python model's arguments with --arg")
        from layerscope.api import load_python

        return load_python(spec_arg, parse_sets(list(options.args), "--arg"))
    if options.args:
        raise UsageError("--arg is for Python-defined models (pkg.module:Class)", hint="for a spec's vars, use --set")
    return load_spec(resolve_spec(spec_arg), options.model, parse_sets(list(options.sets)))


def _traced(subject: ModelSpec | nn.Module, input_texts: list[str], options: Options, search: bool = True) -> Report:
    """Build a spec for the --input texts, or take a Python model, and trace it; `search` off skips
    looking for inputs that fit."""
    from layerscope.api import inspect_module, inspect_spec
    from layerscope.run import devices
    from layerscope.spec.model import ModelSpec

    devices.ANSWER_DYNAMO_LOOKUPS = True  # this process never compiles; see devices.py
    if isinstance(subject, ModelSpec):
        inputs = _inputs_for(subject, input_texts)
        return inspect_spec(subject, inputs, device=options.device, dtype=options.dtype, search=search)
    if not input_texts:
        raise UsageError("a Python-defined model needs --input", hint="e.g. --input 1x3x32x32 (or 5:int64 for ids)")
    if options.dtype != "float32":
        raise UsageError("--dtype is for spec files", hint="a Python-defined model keeps its own dtypes")
    import torch

    from layerscope.spec.shapes import parse_input

    tensors = [
        torch.zeros(shape, dtype=getattr(torch, dtype or "float32")) for shape, dtype in map(parse_input, input_texts)
    ]
    return inspect_module(subject, tensors, device=options.device, search=search)


def _guarded(work: Callable[[], T], debug: bool) -> T:
    """Run `work`; a user error becomes one line and its exit code, a bug one line and exit 3."""
    try:
        return work()
    except LayerscopeError as e:
        if debug:
            raise
        where = f"{e.source}: " if e.source else "layerscope: "
        hint = f" — {e.hint}" if e.hint else ""
        typer.echo(f"{where}error: {e.message}{hint}", err=True)
        raise typer.Exit(e.exit_code) from None
    except Exception as e:
        if debug:
            raise
        typer.echo(f"layerscope: internal error: {type(e).__name__}: {e} — rerun with --debug and report it", err=True)
        raise typer.Exit(3) from None


def _run(
    view: Callable[[Report], RenderableType],
    spec: str | None,
    inputs: list[str],
    fmt: Format,
    options: Options,
    debug: bool,
    export: Path | None = None,
) -> None:
    report = _guarded(lambda: _traced(_load(spec, options), inputs, options), debug)
    from layerscope.render.text import to_json

    _emit(fmt, lambda: to_json(report), lambda: view(report), failed=report.failure is not None, export=export)


def _emit(
    fmt: Format,
    as_json: Callable[[], str],
    as_view: Callable[[], RenderableType],
    failed: bool = False,
    export: Path | None = None,
) -> None:
    """Print in the chosen format, after writing --export if asked; a model that rejected an input
    makes the exit status 1."""
    from layerscope.render import files
    from layerscope.render.text import to_csv, to_markdown

    if export is not None:
        _guarded(lambda: files.export(as_view(), export), debug=False)
    if fmt is Format.json:
        typer.echo(as_json())
    elif fmt is Format.markdown:
        typer.echo(to_markdown(as_view()), nl=False)
    elif fmt is Format.csv:
        typer.echo(to_csv(as_view()), nl=False)
    else:
        _console().print(as_view())
    if failed:
        raise typer.Exit(1)


def _console() -> Console:
    """A console as wide as the terminal; 120 columns when piped (rich would pick 80), unless COLUMNS says."""
    import os

    from rich.console import Console

    wide = sys.stdout.isatty() or "COLUMNS" in os.environ
    return Console(width=None if wide else 120)


def _layer_table_command(name: str, view_name: str, summary: str) -> None:
    """Register a command that prints a per-layer table; `inspect` and `shapes` take the same options."""

    def command(
        spec: SpecArg = None,
        inputs: InputOpt = None,
        depth: DepthOpt = None,
        fmt: FormatOpt = Format.table,
        model: ModelOpt = None,
        device: DeviceOpt = "auto",
        dtype: DtypeOpt = "float32",
        sets: SetOpt = None,
        allow_import: AllowImportOpt = False,
        args: ArgOpt = None,
        export: ExportOpt = None,
        debug: DebugOpt = False,
    ) -> None:
        from layerscope.render import views as render

        view = getattr(render, view_name)
        options = Options(model, device, dtype, tuple(sets or ()), allow_import, tuple(args or ()))
        _run(lambda r: view(r, depth), spec, inputs or [], fmt, options, debug, export)

    command.__doc__ = summary
    app.command(name)(command)


_layer_table_command(
    "inspect", "inspect_view", "The layer tree: name, type, output shape, parameters, share of the total; totals below."
)
_layer_table_command("shapes", "shapes_view", "Input and output shape of every layer, in the order they run.")


@app.command()
def params(
    spec: SpecArg = None,
    inputs: InputOpt = None,
    fmt: FormatOpt = Format.table,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sets: SetOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    export: ExportOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Every parameter: qualified name, shape, count, dtype, trainable, and what it is tied to."""
    from layerscope.render.views import params_view

    _run(
        params_view,
        spec,
        inputs or [],
        fmt,
        Options(model, device, dtype, tuple(sets or ()), allow_import, tuple(args or ())),
        debug,
        export,
    )


@app.command()
def check(
    spec: SpecArg = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="SHAPE",
            help="A candidate input such as 1x3x32x32 (:dtype allowed); several inputs of one model joined by commas. Repeat for more candidates. Default: the spec's input:.",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sets: SetOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    export: ExportOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Which of several inputs the model accepts; exit status 1 when any does not fit."""
    from layerscope.render.text import check_json
    from layerscope.render.views import check_view
    from layerscope.report.model import CheckResult

    options = Options(model, device, dtype, tuple(sets or ()), allow_import, tuple(args or ()))

    def results() -> tuple[str, list[CheckResult]]:
        loaded = _load(spec, options)
        out, name = [], ""
        for candidate in inputs or [""]:
            report = _traced(loaded, [t for t in candidate.split(",") if t], options, search=False)
            out.append(CheckResult(report.input_shapes, report.failure is None, report.output_shapes, report.failure))
            name = report.model
        return name, out

    name, checked = _guarded(results, debug)
    _emit(
        fmt,
        lambda: check_json(name, checked),
        lambda: check_view(name, checked),
        failed=not all(r.fits for r in checked),
        export=export,
    )


@app.command("list")
def list_specs(fmt: FormatOpt = Format.table, export: ExportOpt = None) -> None:
    """The bundled specs, usable by name in place of a file."""
    import json

    from layerscope.render.views import bundled_view
    from layerscope.spec.bundled import bundled_specs

    specs = bundled_specs()
    as_json = [{"name": b.name, "description": b.description, "path": str(b.path)} for b in specs]
    _emit(fmt, lambda: json.dumps(as_json, indent=2), lambda: bundled_view(specs), export=export)


@app.command()
def diff(
    before: Annotated[str, typer.Argument(help="The spec (or bundled name) to compare from.", metavar="SPEC_A")],
    after: Annotated[str, typer.Argument(help="The spec to compare with it.", metavar="SPEC_B")],
    inputs: InputOpt = None,
    everything: Annotated[bool, typer.Option("--all", help="Show the unchanged layers too.")] = False,
    fmt: FormatOpt = Format.table,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    allow_import: AllowImportOpt = False,
    export: ExportOpt = None,
    debug: DebugOpt = False,
) -> None:
    """What changed from SPEC_A to SPEC_B, layer by layer: added and removed layers, shapes, parameters."""
    import json

    from layerscope.render import views as render
    from layerscope.report.diff import compare

    options = Options(None, device, dtype, (), allow_import)

    def traced(spec: str) -> Report:
        return _traced(_load(spec, options), inputs or [], options)

    changes = _guarded(lambda: compare(traced(before), traced(after)), debug)
    _emit(
        fmt,
        lambda: json.dumps(changes.to_dict(), indent=2),
        lambda: render.diff_view(changes, everything),
        failed=changes.before.failure is not None or changes.after.failure is not None,
        export=export,
    )


class Target(str, enum.Enum):
    python = "python"


@app.command("export")
def export_spec(
    spec: SpecArg = None,
    to: Annotated[
        Target, typer.Option("--to", help="What to write: python, a standalone nn.Module source file.")
    ] = Target.python,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of printing.", show_default=False),
    ] = None,
    inputs: InputOpt = None,
    model: ModelOpt = None,
    sets: SetOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The spec as a standalone PyTorch module (class per block, the spec's parameter names)."""
    from layerscope.builder.builder import build
    from layerscope.builder.to_python import to_python
    from layerscope.render.files import write_whole
    from layerscope.spec.model import ModelSpec

    options = Options(model, "meta", "float32", tuple(sets or ()))

    def source() -> str:
        loaded = _load(spec, options)
        assert isinstance(loaded, ModelSpec)
        built = build(loaded, _inputs_for(loaded, inputs or []), device="meta")  # arguments, not weights
        if built.stopped_at is not None:
            raise UsageError(
                f"{loaded.name} does not accept its input at {built.stopped_at}, so its later layers cannot be written",
                hint="run `layerscope inspect` on it for the diagnosis",
            )
        where = spec if spec is not None else str(loaded.source.file)
        return to_python(loaded, built, where)

    text = _guarded(source, debug)
    if output is None:
        typer.echo(text, nl=False)
    else:
        _guarded(lambda: write_whole(output, text), debug)


@app.command()
def schema() -> None:
    """The JSON Schema of spec files, for editors (the bundled configs point at it on their first line)."""
    import json

    from layerscope.spec.schema import spec_schema

    typer.echo(json.dumps(spec_schema(), indent=2))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"layerscope {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Look inside a PyTorch model before you train it."""


def run() -> None:
    """Console-script entry point.

    Once torch is loaded, the interpreter's teardown (freeing torch's modules and objects) takes
    ~0.25 s, a fifth of a small model's whole run; it frees nothing the OS would not. So after
    the command is done and its output flushed, a process that loaded torch ends at once.
    The cyclic garbage collector runs less often: with Python's default thresholds it walks
    torch's ~200,000 objects again and again (0.1 s of `inspect lenet`, 0.9 s of a
    10,000-layer spec), for a process that lives a second or two.
    """
    gc.set_threshold(50_000, 20, 20)
    try:
        app(prog_name="layerscope")
        code: object = 0
    except SystemExit as e:
        code = e.code
    if "torch" not in sys.modules:
        sys.exit(code)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away (`| head`): nothing left to tell it
        pass
    os._exit(code or 0)


if __name__ == "__main__":
    sys.exit(run())
