"""The training memory under `inspect --train`: a "Saved" cell per layer and the totals below the table."""

from __future__ import annotations

from layerscope.render.table import human_bytes
from layerscope.report.model import LayerRecord, Report


def saved_cell(layer: LayerRecord) -> str:
    """What autograd saved first in this call (its children's included); '-' for nothing, '?' unknown."""
    if layer.saved_bytes is None:
        return "?"
    return human_bytes(layer.saved_bytes) if layer.saved_bytes else "-"


def train_rows(report: Report) -> list[tuple[str, str]]:
    """The training memory's lines under the totals, when the report has one."""
    memory = report.train_memory
    if memory is None:
        return []
    state = memory.optimizer
    if memory.optimizer == "sgd" and memory.momentum:
        state = f"sgd, momentum {memory.momentum:g}"
    return [
        ("Training memory (one step)", ""),
        ("  Parameters", human_bytes(memory.params_bytes)),
        ("  Gradients", human_bytes(memory.grads_bytes)),
        (f"  Optimizer state ({state})", human_bytes(memory.optimizer_bytes)),
        ("  Saved for backward", human_bytes(memory.activations_bytes)),
        ("  Total", human_bytes(memory.total_bytes)),
    ]
