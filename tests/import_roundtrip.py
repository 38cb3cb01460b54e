"""The round trip of `layerscope import`: a Python model and the spec imported from it, inspected
each (layerscope.inspect), must agree on the parameter count, every layer call's name and output
shapes (in call order; a spec's functional ops, which are function calls in Python, aside), and
the FLOPs. Used by tests/test_importer.py, tests/test_real_libraries.py and
benchmarks/import_roundtrip.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

import layerscope
from layerscope.importer.document import to_spec
from layerscope.spec.model import parse_model
from layerscope.spec.source import load_documents


@dataclass
class RoundTrip:
    name: str
    text: str
    params: tuple[int, int]  # Python's, the spec's
    flops: tuple[int | None, int | None]
    layers: int  # layer calls compared
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def row(self) -> str:
        """A Markdown table row: model | params py/yaml | layers compared | FLOPs py/yaml | result."""
        result = "same" if self.ok else f"differs: {self.differences[0]}"
        flops = "/".join(f"{f:,}" if f is not None else "?" for f in self.flops)
        return f"| {self.name} | {self.params[0]:,}/{self.params[1]:,} | {self.layers} | {flops} | {result} |"


def calls(report: layerscope.Report) -> list[tuple[str, list[list[int]]]]:
    """Each module call but the model's own and a spec's functional ops: name and output shapes."""
    return [(r.name, r.output_shapes) for r in report.layers if r.name and not r.functional]


def round_trip(
    model: nn.Module,
    shapes: Sequence[Sequence[int]],
    name: str,
    dtypes: Sequence[str] = (),
    notes: list[str] | None = None,
) -> RoundTrip:
    """Import `model` for inputs of `shapes`, inspect both, and list where they differ; `notes` takes
    the importer's (a container written from its recorded calls)."""
    dtypes = list(dtypes) or ["float32"] * len(shapes)
    text = to_spec(model, [(tuple(s), d) for s, d in zip(shapes, dtypes, strict=True)], name, notes=notes)
    spec = parse_model(load_documents(text, f"<{name}>")[0], default_name=name)
    python = layerscope.inspect(model, [list(s) for s in shapes], dtypes=dtypes, device="meta")
    if python.failure is not None:  # a forward that reads values (`if x.sum() > 0`): on the CPU where it fits
        python = layerscope.inspect(model, [list(s) for s in shapes], dtypes=dtypes, device="auto")
    imported = layerscope.inspect(spec, device="meta")
    ours, theirs = calls(python), calls(imported)
    differences = []
    if python.failure is not None or imported.failure is not None:
        differences.append(f"a run failed: {(python.failure or imported.failure).message}")  # type: ignore[union-attr]
    if python.total_params != imported.total_params:
        differences.append(f"params {python.total_params} vs {imported.total_params}")
    for (a, shape_a), (b, shape_b) in zip(ours, theirs, strict=False):
        if (a, shape_a) != (b, shape_b):
            differences.append(f"call {a} {shape_a} vs {b} {shape_b}")
            break
    if len(ours) != len(theirs):
        differences.append(f"{len(ours)} layer calls vs {len(theirs)}")
    if python.total_flops != imported.total_flops:
        differences.append(f"FLOPs {python.total_flops} vs {imported.total_flops}")
    return RoundTrip(
        name,
        text,
        (python.total_params, imported.total_params),
        (python.total_flops, imported.total_flops),
        len(ours),
        differences,
    )
