"""The arguments a user's module is called with: given (tensors, numpy arrays, lists, dicts), or
made from shapes with values a model expects to see.

The rule for made values (docs in README "Python models"): float inputs are standard normal;
integer inputs are ids below the smallest `num_embeddings` of the model's Embedding layers (so every
embedding takes them), or 1..7 in a model without one; an input whose keyword name says `mask`,
and every bool input, is all ones. Values come from a generator seeded with `seed`, never from
torch's global one. On meta nothing is made but the shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from layerscope.errors import UsageError
from layerscope.run.trace import mapped, moved, nbytes

SMALL_INTS = (1, 8)  # ids for a model without an Embedding: small, positive


@dataclass(frozen=True)
class Example:
    """One input to make: its shape and dtype, and its keyword (None: positional)."""

    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    name: str | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


@dataclass
class Inputs:
    """A forward's arguments: positional and keyword."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return nbytes([*self.args, self.kwargs])

    def to(self, device: torch.device) -> Inputs:
        """The same inputs on `device`, each tensor a copy: a forward that writes its input in
        place (x.mul_(2)) writes the copy, never the caller's tensor."""
        return Inputs(tuple(copied(list(self.args), device)), copied(self.kwargs, device))


def copied(value: Any, device: torch.device) -> Any:
    """`value` with each tensor copied onto `device` (a meta tensor, which holds no values, made as zeros)."""

    def copy(t: Tensor) -> Tensor:
        if t.device != device:
            return moved(t, device)  # a new tensor already
        return t if t.is_meta else t.clone()

    return mapped(value, copy)


def as_inputs(value: Any) -> Inputs:
    """The API's `inputs=`: a tensor or numpy array (one argument), a tuple or list (positional
    arguments, each of any nesting), or a dict (keyword arguments). numpy arrays become tensors."""
    if isinstance(value, Inputs):
        return value
    if isinstance(value, Mapping):
        return Inputs((), {str(k): _tensors_from_numpy(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return Inputs(tuple(_tensors_from_numpy(v) for v in value))
    return Inputs((_tensors_from_numpy(value),))


def _tensors_from_numpy(value: Any) -> Any:
    """numpy arrays (anywhere in lists, tuples, dicts) as tensors holding a copy of them."""
    return mapped(value, _tensor_from_numpy, leaf=_is_numpy)


def _is_numpy(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "__array__") and hasattr(value, "dtype")


def _tensor_from_numpy(value: Any) -> Tensor:
    try:
        return torch.tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise UsageError(f"a numpy input of dtype {value.dtype} is not a tensor: {e}") from None


def make(examples: Sequence[Example], model: nn.Module, device: torch.device, seed: int = 0) -> Inputs:
    """Inputs of the examples' shapes on `device`, with the values of the module docstring's rule."""
    if not 0 <= seed < 2**64:
        raise UsageError(f"seed {seed} is out of range", hint="give a seed from 0 to 2**64 - 1")
    generator = torch.Generator().manual_seed(seed)
    high = id_limit(model)
    args: list[Tensor] = []
    kwargs: dict[str, Tensor] = {}
    for example in examples:
        tensor = _value(example, generator, high) if device.type != "meta" else None
        if tensor is None:
            tensor = torch.empty(example.shape, dtype=example.dtype, device=device)
        elif tensor.device != device:
            tensor = tensor.to(device)
        if example.name is None:
            args.append(tensor)
        else:
            kwargs[example.name] = tensor
    return Inputs(tuple(args), kwargs)


def _value(example: Example, generator: torch.Generator, high: int | None) -> Tensor:
    shape, dtype = example.shape, example.dtype
    if dtype == torch.bool or "mask" in (example.name or "").lower():
        return torch.ones(shape, dtype=dtype)
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(shape, generator=generator).to(dtype)
    low, top = (0, high) if high else SMALL_INTS
    return torch.randint(low, top, shape, generator=generator).to(dtype)


def id_limit(model: nn.Module) -> int | None:
    """The smallest `num_embeddings` of the model's Embedding layers, None without one."""
    sizes = [m.num_embeddings for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    return min(sizes) if sizes and min(sizes) > 0 else None
