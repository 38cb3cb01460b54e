"""How a command ends: one-line errors with their exit status, and output in the chosen format."""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer

from layerscope.cli.options import Format
from layerscope.errors import LayerscopeError, first_line, inert

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

T = TypeVar("T")


def guarded(work: Callable[[], T], debug: bool) -> T:
    """Run `work`; a user error becomes one line and its exit code, a bug one line and exit 3
    (with `--debug`, the traceback instead)."""
    try:
        return work()
    except (typer.Exit, typer.Abort):
        raise
    except BaseException as e:
        if debug:
            raise
        fail(*ending(e))


def ending(e: BaseException) -> tuple[str, int]:
    """The line and exit status a command ends with when `e` escapes it.

    What the inspected code itself does is the user's: sys.exit() in a model's forward is reported
    (exit 1), Ctrl-C or a KeyboardInterrupt it raises ends the run (130); input nested past
    Python's recursion limit, or too large for memory, is the input's (2)."""
    if isinstance(e, LayerscopeError):
        where = f"{e.source}: " if e.source else "layerscope: "
        return f"{where}error: {e.message}" + (f" — {e.hint}" if e.hint else ""), e.exit_code
    if isinstance(e, SystemExit):  # layerscope never calls sys.exit inside a command: this is the user's code
        return (
            f"layerscope: error: the inspected code called sys.exit({e.code!r}) — it cannot be inspected past that",
            1,
        )
    if isinstance(e, KeyboardInterrupt):
        return "layerscope: interrupted", 130
    if isinstance(e, RecursionError):
        return "layerscope: error: nested too deeply for Python's recursion limit — simplify the nesting", 2
    if isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e)):
        return "layerscope: error: out of memory — try --device meta, where nothing is allocated", 2
    return f"layerscope: internal error: {type(e).__name__}: {first_line(str(e))} — rerun with --debug and report it", 3


def fail(line: str, code: int) -> NoReturn:
    """End the command with `line` on stderr (made one inert line) and exit status `code`."""
    typer.echo(inert(line, newlines=False), err=True)
    raise typer.Exit(code)


def emit(
    fmt: Format,
    as_json: Callable[[], str],
    as_view: Callable[[], RenderableType],
    failure: str | None = None,
    export: Path | None = None,
    differs: bool = False,
    notes: list[str] | None = None,
) -> None:
    """Print in the chosen format, after writing --export if asked. A model that rejected an input
    (`failure`, one line) is told on stderr too, whatever the format, and makes the exit status 1;
    so does `differs` (diff found a difference), without a line. CSV, which has no place for
    `notes`, leaves them on stderr when the run passed (the other formats print them)."""
    from layerscope.render import files
    from layerscope.render.text import to_csv, to_markdown

    if export is not None:
        guarded(lambda: files.export(as_view(), export), debug=False)
    if fmt is Format.json:
        text = guarded(as_json, debug=False)
    elif fmt is Format.markdown:
        text = guarded(lambda: to_markdown(as_view()), debug=False)
    elif fmt is Format.csv:
        text = guarded(lambda: to_csv(as_view()), debug=False)
    else:
        text = None
    writing(lambda: typer.echo(text, nl=fmt is Format.json) if text is not None else show(as_view()))
    if fmt is Format.csv and failure is None:  # a failure is one line; its notes are in the other formats
        for note in notes or ():
            typer.echo(inert(note, newlines=False), err=True)
    if failure is not None:
        typer.echo(inert(failure, newlines=False), err=True)
    if failure is not None or differs:
        raise typer.Exit(1)


def writing(work: Callable[[], object]) -> None:
    """Write to stdout; a reader gone away (`| head`) ends the command quietly with 141, as SIGPIPE
    would, and any other write error (a full disk) with one line and 74 (EX_IOERR)."""

    def attempt() -> OSError | None:
        try:
            work()
        except OSError as e:
            return e
        return None

    e = guarded(attempt, debug=False)
    if e is not None:
        try:  # nothing more can reach stdout: later flushes (the interpreter's at exit) go nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        if e.errno == errno.EPIPE:
            raise typer.Exit(141) from None
        fail(f"layerscope: error: cannot write the output: {e.strerror or e}", 74)


_TRAILING = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$", re.MULTILINE)  # spaces and colour codes at a line's end
_CODE = re.compile(r"\x1b\[[0-9;]*m")


def _no_trailing_spaces(text: str) -> str:
    """Each line without the spaces at its end, its colour codes kept (a reset must still reset)."""
    return _TRAILING.sub(lambda m: "".join(_CODE.findall(m.group(0))), text)


def show(view: RenderableType) -> None:
    """Print a view on the console, without the spaces rich pads its lines with to the table's width."""
    out = console()
    with out.capture() as captured:
        out.print(view)
    out.file.write(_no_trailing_spaces(captured.get()))
    out.file.flush()


def console() -> Console:
    """A console as wide as the terminal; 120 columns when piped (rich would pick 80), unless COLUMNS says."""
    from rich.console import Console

    columns = os.environ.get("COLUMNS", "")
    given = int(columns) if columns.isdigit() and int(columns) > 0 else None  # COLUMNS=0 or text: unset
    width = max(given, 20) if given else None if sys.stdout.isatty() else 120
    console = Console(width=width)
    console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign] # rich's own ends the process with 1
    return console


def _broken_pipe() -> None:
    raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
