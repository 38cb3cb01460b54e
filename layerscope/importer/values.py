"""Importer, tensor values: a non-persistent buffer's values are in no checkpoint, so the spec must
make them itself, with its buffer inits: all zeros (`init: zeros`, the default) or all ones
(`init: ones`) are written; any other values are refused naming the buffer (a spec built from it
would compute something else, whatever weights are loaded). Parameters and persistent buffers take
their values from the checkpoint, as any weight does.
"""

from __future__ import annotations

import torch
from torch import nn

from layerscope.errors import UsageError


def free_buffers(model: nn.Module) -> dict[str, str]:
    """Each non-persistent buffer of `model` (the user's, with its values) → the spec's init that
    makes its values exactly, or why none does (a sentence starting with "its values")."""
    kept = set(model.state_dict(keep_vars=True))
    found: dict[str, str] = {}
    for name, value in model.named_buffers(remove_duplicate=False):
        if name not in kept:
            found[name] = _init(value)
    return found


def _init(value: torch.Tensor) -> str:
    if value.is_meta:
        return "its values are unknown (the model's buffer is on the meta device)"
    if bool(torch.all(value == 0)):  # an empty one too
        return "zeros"
    if bool(torch.all(value == 1)):
        return "ones"
    return "its values are neither all zeros nor all ones, the only inits a spec makes exactly"


def buffer_init(inits: dict[str, str], name: str) -> dict[str, str]:
    """The `init:` to write for the non-persistent buffer `name` (none for zeros, the default), or a
    refusal naming it."""
    init = inits.get(name, "its values are not known to the importer")
    if init == "zeros":
        return {}
    if init == "ones":
        return {"init": "ones"}
    raise UsageError(
        f"{name}: a non-persistent buffer, in no checkpoint, and the spec cannot make it: {init}",
        hint="register it with persistent=True, so its values load with the weights",
    )
