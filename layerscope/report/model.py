"""The report: plain data produced by the trace stage and consumed by the renderers (no torch here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.jupyter import JupyterMixin

Shape = list[int]


@dataclass
class LayerRecord:
    """One call of one module during the traced forward pass, in call order."""

    name: str  # qualified module name; "" for the model itself
    type: str
    depth: int  # 0 for the model, 1 for its children, ...
    input_shapes: list[Shape]
    output_shapes: list[Shape] = field(default_factory=list)
    num_params: int = 0  # this module's parameters including its children's, each counted once
    trainable_params: int = 0
    is_leaf: bool = True
    shared_with: str | None = None  # set on a repeated call: the name the module was first called under
    source: str | None = None  # spec file:line:col, for modules built from a spec
    completed: bool = False  # False when the forward pass failed inside this call
    flops: int = 0  # counted by dispatch.OpCounter (torch's formulas) during this call, children included
    output_bytes: int = 0


@dataclass
class ParamRecord:
    """One named parameter; tied parameters appear under each name and are counted once."""

    name: str
    shape: Shape
    numel: int
    dtype: str
    trainable: bool
    shared_with: list[str] = field(default_factory=list)  # the other names of the same tensor
    counted: bool = True  # False for every name of a tied tensor but the first


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


@dataclass
class Note:
    """A warning torch raised while running the model, with the layer it came from."""

    layer: str
    message: str


@dataclass
class Report(JupyterMixin):
    """Everything the tables show, as data; `to_dict` is the JSON contract.

    Printed by rich (or shown in Jupyter) it is the `inspect` table; render.py draws it.
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
    total_flops: int = 0
    failure: Failure | None = None
    notes: list[Note] = field(default_factory=list)

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def __rich__(self) -> Any:
        from layerscope.render.views import inspect_view

        return inspect_view(self)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = asdict(self)
        data["non_trainable_params"] = self.non_trainable_params
        data["total_macs"] = self.total_flops // 2
        data["total_bytes"] = self.total_bytes
        return data

    @property
    def total_bytes(self) -> int:
        """The memory estimate: inputs, parameters and forward activations."""
        return self.input_bytes + self.param_bytes + self.activation_bytes


@dataclass
class CheckResult:
    """One candidate input of `layerscope check` and how the model took it."""

    input_shapes: list[Shape]
    fits: bool
    output_shapes: list[Shape]
    failure: Failure | None


def format_shape(shape: Shape) -> str:
    """A shape as users type it after --input: 1x3x32x32 (a 0-d tensor is 'scalar')."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


def format_shapes(shapes: list[Shape]) -> str:
    """Several shapes, comma-separated."""
    return ", ".join(format_shape(s) for s in shapes)
