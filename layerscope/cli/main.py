"""The typer application and the console script's entry point."""

from __future__ import annotations

import atexit
import errno
import gc
import io
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from layerscope import __version__
from layerscope.errors import first_line, inert

# click's exceptions, as the typer in use raises them: typer 0.26+ carries its own copy of click
_CLICK_ERRORS = {c.__name__: c for c in typer.BadParameter.__mro__}
_UsageError, _ClickException = _CLICK_ERRORS["UsageError"], _CLICK_ERRORS["ClickException"]


def _plain_flags(params: list[Any]) -> list[Any]:
    """Flags shown in --help as `--debug`, not `--debug <bool>` (typer shows every option's type)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def _plain_words(message: str) -> str:
    """A usage error in the command line's words, not its validation library's; no full stop before the hint."""
    message = message.replace("Value error, ", "")
    message = message.replace(
        "Input should be a valid integer, unable to parse string as an integer", "not a whole number"
    )
    message = message.replace("Input should be a valid number, unable to parse string as a number", "not a number")
    return message.rstrip(".")


class Command(TyperCommand):
    """A command whose --help shows flags without a type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class Group(TyperGroup):
    """The app: flags without a type in --help, and every usage error one line on stderr, exit 2,
    `layerscope: error: … — hint`, in place of click's boxed or three-line usage message."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_flags(super().get_params(ctx))

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "layerscope"
            argv = kwargs.get("args") if kwargs.get("args") is not None else (args[0] if args else sys.argv[1:])
            named = next((a for a in argv or () if a in self.commands), None)
            if where == "layerscope" and named:  # an option of the command, missing its value
                where = f"layerscope {named}"
            if e.format_message():  # else the help was printed, for a command line without arguments
                line = f"layerscope: error: {_plain_words(first_line(e.format_message()))} — see '{where} --help'"
                typer.echo(inert(line, newlines=False), err=True)
            code = 2
        except _ClickException as e:  # a bad file given to an option click opens itself
            typer.echo(inert(f"layerscope: error: {first_line(e.format_message())}", newlines=False), err=True)
            code = e.exit_code
        except typer.Abort:  # Ctrl-C while click read the command line
            typer.echo("layerscope: interrupted", err=True)
            code = 130
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="layerscope",
    help="Look inside a PyTorch model before you train it: layers, shapes and parameters from a YAML spec.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    cls=Group,
)


def command(name: str | None = None) -> Any:
    """`@command()`: register a command on the app, with flags shown plainly in its --help."""
    return app.command(name, cls=Command)


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


FAST_EXIT = "LAYERSCOPE_FAST_EXIT"  # set to 0 to end through the interpreter's usual teardown


def run() -> None:
    """Console-script entry point.

    Once torch is loaded, the interpreter's teardown (freeing torch's modules and objects) takes
    ~0.25 s, a fifth of a small model's whole run; it frees nothing the OS would not. So after
    the command is done, its output flushed and the atexit handlers run (logging's among them),
    a process that loaded torch ends at once (`_fast_exit`) — unless it ran a user's Python code
    (`--allow-import`), whose objects may hold files or other resources only a full teardown
    finalises, or LAYERSCOPE_FAST_EXIT=0 asks for the usual ending.
    The cyclic garbage collector runs less often: with Python's default thresholds it walks
    torch's ~200,000 objects again and again (0.1 s of `inspect lenet`, 0.9 s of a
    10,000-layer spec), for a process that lives a second or two.
    """
    gc.set_threshold(50_000, 20, 20)
    if sys.stdout is None:  # started with stdout closed (`>&-`): a write is then an error, not a crash
        sys.stdout = _ClosedStream()
    for stream in (sys.stdout, sys.stderr):  # any encoding: what it cannot encode is written as an escape
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        app(prog_name="layerscope")
        code: object = 0
    except SystemExit as e:
        code = e.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    if _fast_exit_allowed():
        _fast_exit(code or 0)
    sys.exit(code)


class _ClosedStream(io.TextIOBase):
    """What stands for a stdout the process was started without: every write fails as it would on fd 1."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "stdout is closed")

    def isatty(self) -> bool:
        return False


def _fast_exit_allowed() -> bool:
    """Skip the teardown only where it frees nothing but torch's own objects."""
    from layerscope.cli import targets

    return "torch" in sys.modules and not targets.imported_user_code and os.environ.get(FAST_EXIT, "1") != "0"


def _fast_exit(code: int) -> None:
    """End now, as the interpreter would after its teardown: atexit handlers run, output flushed."""
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's; absent elsewhere
    if run_exit_handlers is None:
        sys.exit(code)
    run_exit_handlers()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # the reader went away (`| head`): nothing left to tell it
        pass
    os._exit(code)
