"""What a traced forward pass observes, as plain data: each module call, each parameter, each warning.

Made by the run stage (trace.py) and carried into the Report unchanged; no torch here, so the
renderers can read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Shape = list[int]  # a tensor's sizes, as JSON writes them


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
    flops: int | None = (
        0  # by run.counting.OpCounter (torch's formulas) during this call, children included; None: unknown
    )
    output_bytes: int = 0
    functional: bool = False  # a spec's functional op (relu, add, flatten): a module standing for a function call
    saved_bytes: int | None = (
        None  # under --train: what autograd saved for backward first in this call (run/training.py)
    )
    # data flow (run/flow.py), one entry per input / output tensor: the node that produced it, `input:k`,
    # `layer:i` (the i-th record) or `join:j` (the j-th Join); None for a tensor none of them gave
    inputs_from: list[str | None] = field(default_factory=list)
    outputs_from: list[str | None] = field(default_factory=list)
    # receptive field of the output, per spatial axis (report/receptive.py); None off a spatial path
    receptive_field: list[int] | None = None
    jump: list[int] | None = None  # input pixels between neighbouring outputs' fields
    start: list[float] | None = None  # centre of output element 0's field, in input pixels


@dataclass
class Join:
    """An op outside any layer (Python code between modules: `out += identity`, `torch.cat`) that
    combined tensors of different producers; a node of the data flow like a layer."""

    op: str  # the aten op's name: add, cat, mul, bmm, …
    inputs_from: list[str]  # the producers combined (as LayerRecord.inputs_from), each once
    input_shapes: list[Shape]  # a tensor of each producer's, as the op took it
    output_shapes: list[Shape]
    within: str  # the module whose forward ran the op ("" the model's own)


@dataclass
class ParamRecord:
    """One named parameter or buffer; tied parameters appear under each name and are counted once."""

    name: str
    shape: Shape
    numel: int
    dtype: str
    trainable: bool
    shared_with: list[str] = field(default_factory=list)  # the other names of the same tensor
    counted: bool = True  # False for every name of a tied tensor but the first
    buffer: bool = (
        False  # a buffer (BatchNorm's running_mean, a spec's buffer:), not a parameter: in no parameter total
    )


@dataclass
class Note:
    """A warning torch raised while running the model, with the layer it came from."""

    layer: str
    message: str
