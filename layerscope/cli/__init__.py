"""CLI stage: a thin typer layer over api.py and render/ (`layerscope.cli:run` is the console script).

main.py holds the app and the entry point, options.py the options, commands.py the commands,
output.py how a command ends (one-line errors, output formats). torch is imported only inside the
commands that need it, so `--help` and `list` start fast.
"""

from layerscope.cli import commands as _commands  # registers the commands on the app
from layerscope.cli.main import app, run

__all__ = ["app", "run"]
del _commands
