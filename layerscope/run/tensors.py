"""Run stage, a module's own tensors: its parameters and buffers as records, and parameter counts per subtree;
and the tensors in any nested value (a call's arguments, an output, an aten op's arguments)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

import torch
from torch import Tensor, nn

from layerscope.run.records import ParamRecord


def subtree_counts(model: nn.Module) -> dict[int, tuple[int, int]]:
    """(parameters, trainable parameters) of every module of `model` with its children, each tensor
    counted once, by module id: one walk up the tree, not one walk down per module."""
    found: dict[int, dict[int, nn.Parameter]] = {}

    def unique(module: nn.Module) -> dict[int, nn.Parameter]:
        if id(module) not in found:
            own = {id(p): p for p in module.parameters(recurse=False)}
            for child in module.children():
                own.update(unique(child))
            found[id(module)] = own
        return found[id(module)]

    unique(model)
    return {key: count_params(list(params.values())) for key, params in found.items()}


def count_params(params: Sequence[nn.Parameter]) -> tuple[int, int]:
    """(elements, trainable elements) of `params`, each tensor once; a lazy one's are not known yet."""
    unique = {id(p): p for p in params if not isinstance(p, nn.parameter.UninitializedParameter)}
    total = sum(p.numel() for p in unique.values())
    return total, sum(p.numel() for p in unique.values() if p.requires_grad)


def param_names(model: nn.Module) -> dict[int, list[str]]:
    """Every name of each parameter tensor, by the tensor's id, in the model's order: a tied or
    shared parameter has several."""
    by_tensor: dict[int, list[str]] = {}
    for qualname, p in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(p), []).append(qualname)
    return by_tensor


def param_records(model: nn.Module) -> list[ParamRecord]:
    """A record per parameter name; a tied tensor is counted under its first name only."""
    return _records(model.named_parameters(remove_duplicate=False), buffer=False)


def buffer_records(model: nn.Module) -> list[ParamRecord]:
    """A record per buffer name (BatchNorm's running_mean, a spec's buffer:), marked as a buffer; one
    shared by a module used twice is counted under its first name only."""
    return _records(model.named_buffers(remove_duplicate=False), buffer=True)


def _records(named: Iterable[tuple[str, Tensor]], buffer: bool) -> list[ParamRecord]:
    pairs = list(named)
    by_tensor: dict[int, list[str]] = {}
    for qualname, t in pairs:
        by_tensor.setdefault(id(t), []).append(qualname)
    records = []
    for qualname, t in pairs:
        lazy = isinstance(t, (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer))
        aliases = by_tensor[id(t)]
        records.append(
            ParamRecord(
                name=qualname,
                shape=[] if lazy else list(t.shape),
                numel=0 if lazy else t.numel(),
                dtype=str(t.dtype).removeprefix("torch."),
                trainable=t.requires_grad and not buffer,
                shared_with=[a for a in aliases if a != qualname],
                counted=aliases[0] == qualname,
                buffer=buffer,
            )
        )
    return records


def tensors_in(value: Any) -> list[Tensor]:
    """Every tensor in a (nested) value — lists, tuples, dicts, dataclasses — in order: LSTM's
    (out, (h, c)) gives three."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in tensors_in(v)]
    if is_dataclass(value) and not isinstance(value, type):  # a dataclass output: its fields in order
        return [t for f in fields(value) for t in tensors_in(getattr(value, f.name))]
    return []


def records_bytes(records: Iterable[ParamRecord]) -> int:
    """The bytes the tensors of these records hold, each in its dtype."""
    return sum(r.numel * getattr(torch, r.dtype).itemsize for r in records)
