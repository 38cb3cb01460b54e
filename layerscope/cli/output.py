"""How a command ends: one-line errors with their exit status, and output in the chosen format."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from layerscope.cli.options import Format
from layerscope.errors import LayerscopeError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

T = TypeVar("T")


def guarded(work: Callable[[], T], debug: bool) -> T:
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


def emit(
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
        guarded(lambda: files.export(as_view(), export), debug=False)
    if fmt is Format.json:
        typer.echo(as_json())
    elif fmt is Format.markdown:
        typer.echo(to_markdown(as_view()), nl=False)
    elif fmt is Format.csv:
        typer.echo(to_csv(as_view()), nl=False)
    else:
        console().print(as_view())
    if failed:
        raise typer.Exit(1)


def console() -> Console:
    """A console as wide as the terminal; 120 columns when piped (rich would pick 80), unless COLUMNS says."""
    from rich.console import Console

    wide = sys.stdout.isatty() or "COLUMNS" in os.environ
    return Console(width=None if wide else 120)
