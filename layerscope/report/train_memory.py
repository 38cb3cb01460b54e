"""Training memory (`inspect --train`): parameters, gradients, optimizer state and what autograd saves.

    params_bytes       every parameter (a tied one once)
    grads_bytes        the trainable ones' gradients, in their dtypes (a frozen weight, requires_grad
                       False, gets none)
    optimizer_bytes    adam, adamw: two states per trainable parameter (exp_avg, exp_avg_sq) and
                       torch's `step`, a float32 scalar tensor per trainable parameter tensor; sgd
                       with momentum: one (momentum_buffer); plain sgd: none
    activations_bytes  what a training-mode forward saves for backward (run/training.py)
    total_bytes        the four summed; inputs and buffers are left out

What the backward allocates as it runs, kernels' scratch space and the allocator's slack are not
in any of them (README "Training memory").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from layerscope import limits
from layerscope.errors import UsageError
from layerscope.report.model import Note, ParamRecord, Report, TrainMemory
from layerscope.run.tensors import records_bytes
from layerscope.run.trace import moved
from layerscope.run.training import Saved, saved_in_training

OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class Training:
    """What `--train` asks for: the optimizer whose state is counted."""

    optimizer: str = "adam"
    momentum: float = 0.0  # sgd's


def training(train: bool, optimizer: str | None = None, momentum: float | None = None) -> Training | None:
    """The `--train`, `--optimizer` and `--momentum` options checked: None without --train."""
    if not train:
        if optimizer is not None or momentum is not None:
            flag = "--optimizer" if optimizer is not None else "--momentum"
            raise UsageError(f"{flag} is for training memory", hint=f"add --train: inspect SPEC --train {flag} ...")
        return None
    name = (optimizer or "adam").strip().lower()
    if name not in OPTIMIZERS:
        raise UsageError(f"--optimizer {optimizer!r} is not one layerscope counts", hint="use sgd, adam or adamw")
    if momentum is not None and name != "sgd":
        raise UsageError(
            f"--momentum is sgd's; {name} keeps no momentum buffer", hint="use --optimizer sgd --momentum F"
        )
    if momentum is not None and not (math.isfinite(momentum) and momentum >= 0):
        raise UsageError(f"--momentum {momentum}: must be a finite number, 0 or more", hint="e.g. --momentum 0.9")
    return Training(name, float(momentum or 0.0))


def optimizer_bytes(training: Training, trainable: list[ParamRecord]) -> int:
    """The optimizer's state for the trainable parameters, each counted once (see the module's docstring)."""
    size = records_bytes(trainable)
    if training.optimizer in ("adam", "adamw"):
        # torch keeps `step` as a scalar tensor per parameter tensor: float32, float64 where that is the default dtype
        step = 8 if torch.get_default_dtype() == torch.float64 else 4
        return 2 * size + step * len(trainable)
    return size if training.momentum else 0


def with_train_memory(report: Report, saved: Saved, training: Training) -> None:
    """Put the training memory in `report`: the section and each layer's `saved_bytes`."""
    if saved.error is not None:
        report.notes.append(Note("", f"no training memory: the training-mode forward failed ({saved.error})"))
        return
    report.notes.extend(Note("", note) for note in saved.notes)
    trainable = [p for p in report.params if p.counted and not p.buffer and _trains(p, saved.trains)]
    grads = records_bytes(trainable)
    state = optimizer_bytes(training, trainable)
    report.train_memory = TrainMemory(
        optimizer=training.optimizer,
        momentum=training.momentum if training.optimizer == "sgd" else None,
        params_bytes=report.param_bytes,
        grads_bytes=grads,
        optimizer_bytes=state,
        activations_bytes=saved.total_bytes,
        total_bytes=report.param_bytes + grads + state + saved.total_bytes,
    )
    by_call: dict[tuple[str, int], int] = {}
    seen: dict[str, int] = {}
    for name, nbytes in saved.calls:
        n = seen[name] = seen.get(name, -1) + 1
        by_call[(name, n)] = nbytes
    seen.clear()
    for layer in report.layers:
        n = seen[layer.name] = seen.get(layer.name, -1) + 1
        layer.saved_bytes = by_call.get((layer.name, n))


def add_train_memory(
    report: Report,
    model: nn.Module,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    training: Training,
    device: str = "auto",
) -> None:
    """Measure what `model(*args, **kwargs)` saves in training mode and put the training memory in
    `report`: on the device the report's run took, but on meta where the CPU was chosen for an
    inference run (`device` auto) and a training step would pass limits.CPU_BYTES."""
    if not report.ran or report.failure is not None:
        report.notes.append(Note("", "no training memory: it needs a forward that runs"))
        return
    where = torch.device(report.device)
    # a training forward holds every layer's output and more: four times the outputs, generously
    need = 2 * report.param_bytes + report.input_bytes + 4 * report.activation_bytes
    if device == "auto" and where.type == "cpu" and need > limits.CPU_BYTES.value:
        where = torch.device("meta")
    saved = saved_in_training(model, moved(list(args), where), moved(dict(kwargs), where), where)
    with_train_memory(report, saved, training)


def _trains(param: ParamRecord, trains: set[str] | None) -> bool:
    """Whether a parameter gets a gradient in a training step: as it is after `model.train()` (which
    may freeze layers, as detection models' `_freeze_stages` do) where the training run told, else now."""
    return param.trainable if trains is None else param.name in trains
