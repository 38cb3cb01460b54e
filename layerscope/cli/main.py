"""The typer application and the console script's entry point."""

from __future__ import annotations

import atexit
import errno
import gc
import io
import os
import sys
from typing import Annotated

import typer

from layerscope import __version__

app = typer.Typer(
    name="layerscope",
    help="Look inside a PyTorch model before you train it: layers, shapes and parameters from a YAML spec.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


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
