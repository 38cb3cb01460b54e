"""`layerscope graph`: the layer graph as Mermaid or DOT text, optionally written to a file (an SVG
through Graphviz's `dot`, when it is installed)."""

from __future__ import annotations

import enum
import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from layerscope.cli import targets
from layerscope.cli.main import command as register
from layerscope.cli.options import (
    AllowImportOpt,
    ArgOpt,
    DebugOpt,
    DeviceOpt,
    DtypeOpt,
    InputOpt,
    ModelOpt,
    Options,
    SeedOpt,
    SetOpt,
    SpecArg,
)
from layerscope.cli.output import guarded, writing
from layerscope.errors import UsageError, inert


class GraphFormat(str, enum.Enum):
    mermaid = "mermaid"
    dot = "dot"


_EXPORTS = {
    ".mmd": GraphFormat.mermaid,
    ".mermaid": GraphFormat.mermaid,
    ".dot": GraphFormat.dot,
    ".gv": GraphFormat.dot,
}


def export_graph(path: Path, mermaid: str, dot: str) -> None:
    """Write the graph to `path`: Mermaid text for .mmd, DOT for .dot/.gv, an SVG drawn by Graphviz's
    `dot` for .svg (a one-line error when `dot` is not on PATH)."""
    from layerscope.render.files import write_whole

    kind = path.suffix.lower()
    if kind in _EXPORTS:
        write_whole(path, mermaid if _EXPORTS[kind] is GraphFormat.mermaid else dot)
        return
    if kind != ".svg":
        raise UsageError(f"cannot export a graph to {path.name!r}", hint="name a .svg, .dot, .gv or .mmd file")
    program = shutil.which("dot")
    if program is None:
        raise UsageError(
            "--export to .svg needs Graphviz's `dot` program, which is not on PATH",
            hint="install Graphviz, or export the text with --export graph.dot or graph.mmd",
        )
    try:
        drawn = subprocess.run(  # noqa: S603 - the dot on PATH, fixed arguments; the graph goes in on stdin
            [program, "-Tsvg"], input=dot, capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError(f"Graphviz's dot could not run: {e}", hint="check the Graphviz installation") from None
    if drawn.returncode != 0:
        why = (drawn.stderr.strip().splitlines() or ["no message"])[0]
        raise UsageError(f"Graphviz's dot failed: {why}", hint="export the text with --export graph.dot") from None
    write_whole(path, drawn.stdout)


def _needs_a_run(why: str) -> None:
    raise UsageError(
        "the graph follows the tensors of a run, and this model did not run" + (f" ({why})" if why else ""),
        hint="give it an input with --input, e.g. --input 1x3x224x224"
        if "TorchScript" not in why
        else "graph the Python module it was scripted from",
    )


@register()
def graph(
    spec: SpecArg = None,
    inputs: InputOpt = None,
    fmt: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="mermaid (for Markdown, GitHub) or dot (Graphviz).")
    ] = GraphFormat.mermaid,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            metavar="FILE",
            help="Also write the graph to FILE: .mmd Mermaid, .dot/.gv DOT, .svg drawn by Graphviz's dot (if installed).",
            show_default=False,
        ),
    ] = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sets: SetOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    seed: SeedOpt = 0,
    debug: DebugOpt = False,
) -> None:
    """The layer graph: inputs, leaf layers and joins (residual adds, concatenations), edges labelled with shapes."""
    from layerscope.render.graph import build_graph, to_dot, to_mermaid
    from layerscope.render.text import failure_line

    options = Options(model, device, dtype, tuple(sets or ()), allow_import, tuple(args or ()), seed)
    report = guarded(lambda: targets.inspect(targets.load(spec, options), inputs or [], options), debug)
    if not report.ran:  # a Python model without an input, a TorchScript module: no data flow to draw
        guarded(lambda: _needs_a_run(report.notes[0].message.split(":")[0] if report.notes else ""), debug)
    drawn = build_graph(report)
    mermaid, dot = to_mermaid(drawn), to_dot(drawn)
    if export is not None:
        guarded(lambda: export_graph(export, mermaid, dot), debug=False)
    writing(lambda: typer.echo(mermaid if fmt is GraphFormat.mermaid else dot, nl=False))
    if report.failure is not None:  # the graph as far as the run went; the failure as inspect tells it
        typer.echo(inert(failure_line(report.failure, report.model), newlines=False), err=True)
        raise typer.Exit(1)
