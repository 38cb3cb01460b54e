"""Report stage, fixes named in the user's own terms: a batch merged into the features (with the
flatten or view that merged it), a dtype clash (--dtype), and a spec's var that sets the size a layer
expects (--set var=value, which a rebuild has confirmed). Used by diagnose.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor

from layerscope.report.explain import Mismatch
from layerscope.report.model import LayerRecord, Note
from layerscope.spec.shapes import format_shape

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")  # what a spec's --dtype may ask for
# respec((a size a layer has, the size that would fit), …) → the spec's (var, value) pairs that make it run
Respec = Callable[[Sequence[tuple[int, int]]], list[tuple[str, int]]]


def var_hints(respec: Respec, mismatch: Mismatch) -> list[str]:
    """`--set var=value` for each var of the spec that sets the size the layer expects, checked by a rebuild."""
    changes = list(mismatch.resizes)
    if mismatch.wanted is not None and mismatch.fits_input is not None and mismatch.kind in ("features", "channels"):
        changes.insert(0, (mismatch.wanted, mismatch.fits_input))
    return [f"--set {name}={value} makes the model accept this input" for name, value in respec(changes)]


def dtype_hints(where: LayerRecord, weights: str, given: str) -> list[str]:
    """A float input of another dtype than the layer's weights: the model in the input's dtype, or
    the input in the model's."""
    if not where.source:  # a Python module keeps its own dtypes
        return [f"convert the model with .to(torch.{given}), or give a {weights} input"]
    hints = [f"--dtype {given} builds the model in {given}, as this input is"] if given in FLOAT_DTYPES else []
    return [*hints, f"or give a {weights} input (a float32 input takes the model's --dtype)"]


def merged_batch(
    records: Sequence[LayerRecord], where: LayerRecord, mismatch: Mismatch, inputs: Sequence[Any]
) -> tuple[str, list[str]] | None:
    """The batch merged into the features (flatten from dim 0, a view without the batch dim), so a
    layer counts the whole batch's features as one sample's: the why and the fix, else None."""
    first = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
    got = where.input_shapes[0] if where.input_shapes else []
    if mismatch.kind != "features" or not mismatch.fits_input or not mismatch.wanted or first is None:
        return None
    batch = first.shape[0] if first.dim() >= 2 else 0
    if batch < 2 or (len(got) >= 2 and got[0] == batch) or mismatch.fits_input % batch:
        return None
    merger = None
    for r in records:
        if r.is_leaf and r.completed and _takes_the_batch(r, batch):
            merger = r
    per_sample = mismatch.fits_input // batch
    by = (
        "the code before it"
        if merger is None
        else merger.name
        if merger.name == merger.type
        else f"{merger.name} ({merger.type})"
    )
    message = (
        f"{mismatch.message}: {by} merged the batch of {batch} into the features "
        f"({mismatch.fits_input} = {batch} × {per_sample})"
    )
    if merger is None or not merger.source:
        hints = ["keep the batch dim: flatten from dim 1 (x.flatten(1), nn.Flatten()) or view as (x.size(0), -1)"]
    elif merger.type in ("flatten", "Flatten"):
        hints = [f"set start_dim: 1 on {merger.name} ({merger.source}) to keep the batch"]
    else:
        hints = [f"keep the batch first in {merger.name}'s shape ({merger.source}), e.g. shape: [-1, {per_sample}]"]
    if per_sample == mismatch.wanted:
        hints.append(f"with the batch kept, {where.name} gets the {per_sample} features per sample it expects")
    elif where.source:
        hints.append(f"with the batch kept, {where.name} gets {per_sample} features: set {mismatch.arg}: {per_sample}")
    else:
        hints.append(f"with the batch kept, {where.type}({mismatch.arg}={per_sample}, …) would accept it")
    return message, hints


def _takes_the_batch(record: LayerRecord, batch: int) -> bool:
    """Whether `record`'s input has the batch first and its output does not: the batch went into the features."""
    if not record.input_shapes or not record.output_shapes:
        return False
    before, after = record.input_shapes[0], record.output_shapes[0]
    return len(before) >= 2 and before[0] == batch and not (len(after) >= 2 and after[0] == batch)


def merged_batch_notes(records: Sequence[LayerRecord]) -> list[Note]:
    """A note where a spec's flatten, or a reshape or view to one dim, took a batch of several into
    the features (`4x2x3x3 → 72`) and the run went on, every later layer seeing one sample. (A
    failure says so in its diagnosis, `merged_batch`.) A reshape to (B*T, H) is a model's usual
    business, not a merge to note."""
    notes = []
    for r in records:
        if not (r.functional and r.type in ("flatten", "reshape", "view") and r.completed and len(r.input_shapes) == 1):
            continue
        batch, out = (r.input_shapes[0] or [0])[0], r.output_shapes[0] if len(r.output_shapes) == 1 else []
        merged = out and out[0] != batch and out[0] % batch == 0 and _takes_the_batch(r, batch)
        if batch > 1 and merged and (r.type == "flatten" or len(out) == 1):
            fix = "start_dim: 1 keeps it" if r.type == "flatten" else "a shape starting with the batch (or -1) keeps it"
            shapes = f"{format_shape(r.input_shapes[0])} → {format_shape(out)}"
            notes.append(Note(r.name, f"merges the batch of {batch} into the features ({shapes}); {fix}"))
    return notes
