"""Where layerscope runs a model: the CPU while it is small, PyTorch's meta device above that.

Meta allocates nothing, so any size works; but its first op in a process costs about a second
(torch imports its meta kernels), and recurrent layers run there step by step in Python, about
a thousand times slower than on the CPU. Small models therefore run on uninitialised CPU storage.
"""

from __future__ import annotations

import torch

CPU_BUDGET_BYTES = 1 << 30  # weights, inputs and activations a CPU run may hold


def for_bytes(nbytes: int) -> torch.device:
    """The device for a run that needs `nbytes` of tensors."""
    return torch.device("cpu" if nbytes <= CPU_BUDGET_BYTES else "meta")
