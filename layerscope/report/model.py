"""The report: plain data about one run of a model, consumed by the renderers (no torch, no rendering here).

The per-call, per-parameter and per-warning records are the run stage's (run/records.py); the Report
gathers them with the totals and, when the model rejected its input, the diagnosis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from layerscope.run.records import Join, LayerRecord, Note, ParamRecord, Shape

__all__ = [
    "ChainStep",
    "CheckResult",
    "Failure",
    "Join",
    "LayerRecord",
    "Note",
    "ParamRecord",
    "Report",
    "TrainMemory",
]


@dataclass
class ChainStep:
    """One step on the way to a failing layer: a layer that ran and what it produced."""

    name: str
    output_shapes: list[Shape]


@dataclass
class Failure:
    """Why the forward pass stopped, at which layer, and what would fix it."""

    layer: str
    type: str
    source: str | None
    got: list[Shape]  # the input shapes the layer received
    expected: str | None  # what the layer's own attributes ask for, e.g. "in_features=3072 (the last dim)"
    message: str  # the difference explained; torch's message where layerscope has no explanation
    hints: list[str] = field(default_factory=list)
    error: str = ""  # torch's own message, first line
    chain: list[ChainStep] = field(default_factory=list)
    error_type: str = ""  # the exception's class name: ValueError, AttributeError, …
    kind: str = "input"  # input: the layer rejected what it got; bug: the model's code raised (AttributeError, …)
    called_at: str | None = None  # a Python model's: `file:line in function: source` of the failing call
    raised_at: str | None = None  # the innermost line of the model's Python code that was running
    traceback: str = ""  # the whole Python traceback (shown under --debug)


@dataclass
class TrainMemory:
    """The bytes a training step holds, by kind (`inspect --train`, report/train_memory.py)."""

    optimizer: str
    momentum: float | None  # sgd's; None for adam and adamw
    params_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    activations_bytes: int  # what autograd saves for backward in a training-mode forward
    total_bytes: int  # the four summed


@dataclass
class Report:
    """Everything the tables show, as data; `to_dict` is the JSON contract.

    `layerscope.inspect` returns one that prints as the `inspect` table (api.py's InspectReport).
    """

    model: str
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    layers: list[LayerRecord]
    params: list[ParamRecord]
    total_params: int
    trainable_params: int
    param_bytes: int
    device: str
    input_bytes: int = 0
    activation_bytes: int = 0  # outputs of the leaf layers: what a training step keeps for backward
    total_flops: int | None = 0  # None when an operator's FLOPs could not be counted (a note names it)
    failure: Failure | None = None
    notes: list[Note] = field(default_factory=list)
    ran: bool = True  # False when no forward ran (a Python model without input, TorchScript): parameters only
    buffers: list[ParamRecord] = field(default_factory=list)  # BatchNorm's running statistics, a spec's buffer:
    buffer_bytes: int = 0  # in the memory figure, in no parameter total
    train_memory: TrainMemory | None = None  # under --train (report/train_memory.py)
    joins: list[Join] = field(default_factory=list)  # data-flow joins outside layers (run/flow.py)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = asdict(self)
        data["non_trainable_params"] = self.non_trainable_params
        data["total_macs"] = None if self.total_flops is None else self.total_flops // 2
        data["total_bytes"] = self.total_bytes
        if self.train_memory is None:  # the keys of --train only under it
            del data["train_memory"]
            for layer in data["layers"]:
                del layer["saved_bytes"]
        return data

    @property
    def total_bytes(self) -> int:
        """The memory estimate: inputs, parameters, buffers and forward activations."""
        return self.input_bytes + self.param_bytes + self.buffer_bytes + self.activation_bytes


@dataclass
class CheckResult:
    """One candidate input of `layerscope check` and how the model took it."""

    input_shapes: list[Shape]
    fits: bool
    output_shapes: list[Shape]
    failure: Failure | None
