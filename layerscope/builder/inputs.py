"""Build stage, example inputs: the tensors a model is built and run on, and the dtypes they may take."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from layerscope.spec.model import InputSpec
from layerscope.spec.shapes import DTYPES

TORCH_DTYPES = {name: getattr(torch, name) for name in DTYPES}  # the spec's dtype names are torch's
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")  # what --dtype may ask for


def input_dtype(spec: InputSpec, dtype: torch.dtype) -> torch.dtype:
    """An input left at the default float32 takes the model's dtype; any other keeps what the spec says."""
    return dtype if spec.dtype == "float32" else TORCH_DTYPES[spec.dtype]


def make_inputs(
    specs: Sequence[InputSpec], device: torch.device, model_dtype: torch.dtype = torch.float32
) -> tuple[Tensor, ...]:
    """Example tensors for the inputs: deterministic values; integer ids span the declared range."""
    tensors = []
    generator = torch.Generator().manual_seed(0)
    for spec in specs:
        dtype = input_dtype(spec, model_dtype)
        if device.type == "meta":
            tensors.append(torch.empty(spec.shape, dtype=dtype, device=device))
        elif dtype.is_floating_point:
            tensors.append(torch.randn(spec.shape, generator=generator).to(dtype=dtype, device=device))
        else:
            low, high = spec.value_range or (0, 1)
            values = torch.arange(int(torch.Size(spec.shape).numel())) % (high - low) + low
            values[-1] = high - 1  # the largest id is what an Embedding's size must cover
            tensors.append(values.reshape(spec.shape).to(dtype=dtype, device=device))
    return tuple(tensors)
