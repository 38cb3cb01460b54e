"""layerscope: look inside a PyTorch model before you train it.

`load`, `build`, `inspect` and `check_weights` (layerscope/api.py) import torch on first use, so the CLI's
`--help` does not.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "build", "check_weights", "inspect", "load"]


def __getattr__(name: str) -> Any:
    if name in ("load", "build", "inspect", "check_weights"):
        import random

        state = random.getstate()  # rich draws from Python's random when first imported (rich/style.py)
        from layerscope import api

        random.setstate(state)  # so the caller's stream is as it was
        return getattr(api, name)
    raise AttributeError(f"module 'layerscope' has no attribute {name!r}")
