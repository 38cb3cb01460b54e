"""`layerscope import`: a Python-defined model written as a spec (layerscope/importer/)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from layerscope.cli import targets
from layerscope.cli.main import command as register
from layerscope.cli.options import AllowImportOpt, ArgOpt, DebugOpt, InputOpt, Options
from layerscope.cli.output import guarded, inert, writing
from layerscope.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

TargetArg = Annotated[
    str,
    typer.Argument(
        metavar="MODEL", help="A Python-defined model: pkg.module:ClassOrFactory or path/to/file.py:ClassOrFactory."
    ),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", metavar="FILE", help="Write the spec to FILE instead of printing it.", show_default=False
    ),
]


@register("import")
def import_model(
    model: TargetArg,
    inputs: InputOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """A Python-defined model as a spec: its layers, its classes as blocks, repeats folded (needs --input)."""

    def spec_text() -> str:
        from layerscope.importer.document import to_spec
        from layerscope.spec.model import ModelSpec

        if not targets.names_python(model):
            raise UsageError(f"{model!r} is not a Python model", hint="name one as pkg.module:Class or file.py:Class")
        loaded = targets.load(model, options)
        assert not isinstance(loaded, ModelSpec)
        examples = targets.examples(inputs or [])
        if any(e.name is not None for e in examples):
            raise UsageError("a spec's inputs are positional", hint="give --input without NAME=")
        shapes = [(e.shape, str(e.dtype).removeprefix("torch.")) for e in examples]
        name = model.rpartition(":")[2].rpartition(".")[2]
        try:
            return to_spec(loaded, shapes, name, description=f"imported from {model}", notes=notes)
        except UsageError:
            _rejected(loaded, inputs or [], options)
            raise

    options = Options(allow_import=allow_import, args=tuple(args or ()))
    notes: list[str] = []
    text = guarded(spec_text, debug)
    for note in notes:  # a container written from its recorded calls (importer/fallback.py)
        typer.echo(inert(f"note: {note}", newlines=False), err=True)
    if output is None:
        writing(lambda: typer.echo(text, nl=False))
    else:
        from layerscope.render.files import write_whole

        guarded(lambda: write_whole(output, text), debug)


def _rejected(loaded: nn.Module, inputs: list[str], options: Options) -> None:
    """When the import failed because the model rejects its input, say so as `inspect` does (the
    failure line, exit 1) instead of the importer's reading of torch's message."""
    from layerscope.render.text import failure_line

    report = targets.inspect(loaded, inputs, options)
    if report.failure is not None and report.failure.kind == "input":  # not a bug in its code
        typer.echo(inert(failure_line(report.failure, report.model), newlines=False), err=True)
        raise typer.Exit(1)
