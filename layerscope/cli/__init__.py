"""CLI stage: a thin typer layer over api.py and render/ (`layerscope.cli:run` is the console script).

main.py holds the app and the entry point, options.py the options, commands.py the commands (graph.py
`layerscope graph`),
output.py how a command ends (one-line errors, output formats). torch is imported only inside the
commands that need it, so `--help` and `list` start fast. This module itself imports nothing
heavy, so that a Ctrl-C while typer and rich are being imported still ends in one line.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "run"]


def run() -> None:
    """The console script: the app with its commands, run as main.run does."""
    try:
        from layerscope.cli import commands, graph, importing  # noqa: F401 - register the commands on the app
        from layerscope.cli.main import run as run_app
    except KeyboardInterrupt:  # before any command runs, while the imports are under way
        print("layerscope: interrupted", file=sys.stderr)
        sys.exit(130)
    run_app()


def __getattr__(name: str) -> Any:
    if name == "app":
        from layerscope.cli import commands, graph, importing  # noqa: F401 - register the commands on the app
        from layerscope.cli.main import app

        return app
    raise AttributeError(f"module 'layerscope.cli' has no attribute {name!r}")
