"""layerscope: look inside a PyTorch model before you train it.

`load`, `build` and `inspect` (layerscope/api.py) import torch on first use, so the CLI's
`--help` does not.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "build", "inspect", "load"]


def __getattr__(name: str) -> Any:
    if name in ("load", "build", "inspect"):
        from layerscope import api

        return getattr(api, name)
    raise AttributeError(f"module 'layerscope' has no attribute {name!r}")
