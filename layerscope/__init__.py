"""layerscope: look inside a PyTorch model before you train it."""

__version__ = "0.1.0"
