"""`python -m layerscope`: the console script."""

from layerscope.cli import run

run()
