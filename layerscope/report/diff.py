"""Two reports → what changed, layer by layer (`layerscope diff`). Plain data; no torch here."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

from layerscope.report.model import LayerRecord, Report
from layerscope.run.records import Shape


@dataclass
class LayerChange:
    """One layer of either model: `added`, `removed`, `changed` or `same`."""

    name: str
    change: str
    types: tuple[str | None, str | None]
    output_shapes: tuple[list[Shape] | None, list[Shape] | None]
    params: tuple[int | None, int | None]

    @property
    def param_delta(self) -> int:
        before, after = self.params
        return (after or 0) - (before or 0)


@dataclass
class Diff:
    """Layer changes in the order of the models, and the two reports' totals."""

    before: Report
    after: Report
    layers: list[LayerChange] = field(default_factory=list)

    def changed(self) -> list[LayerChange]:
        return [layer for layer in self.layers if layer.change != "same"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of `layerscope diff --format json`."""

        def side(r: Report) -> dict[str, Any]:
            return {
                "model": r.model,
                "input_shapes": r.input_shapes,
                "output_shapes": r.output_shapes,
                "total_params": r.total_params,
                "total_flops": r.total_flops,
                "failed": r.failure is not None,
            }

        return {
            "before": side(self.before),
            "after": side(self.after),
            "layers": [{**asdict(c), "param_delta": c.param_delta} for c in self.layers],
        }


def _rows(report: Report) -> list[LayerRecord]:
    """Each module once, under the name it was first called by; the model's own row aside."""
    return [r for r in report.layers if r.shared_with is None and r.depth > 0]


def compare(before: Report, after: Report) -> Diff:
    """Match the layers of two reports by qualified name (and type), in order."""
    a, b = _rows(before), _rows(after)
    diff = Diff(before, after)
    matcher = difflib.SequenceMatcher(a=[x.name for x in a], b=[y.name for y in b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for x, y in zip(a[i1:i2], b[j1:j2], strict=True):
                same = (x.type, x.output_shapes, x.num_params) == (y.type, y.output_shapes, y.num_params)
                diff.layers.append(_change(x.name, "same" if same else "changed", x, y))
            continue
        olds, news = {x.name: x for x in a[i1:i2]}, {y.name: y for y in b[j1:j2]}
        for x in a[i1:i2]:  # a name on both sides, out of order: one changed row, where it was
            diff.layers.append(_change(x.name, "changed" if x.name in news else "removed", x, news.get(x.name)))
        for y in b[j1:j2]:
            if y.name not in olds:
                diff.layers.append(_change(y.name, "added", None, y))
    return diff


def _change(name: str, change: str, x: LayerRecord | None, y: LayerRecord | None) -> LayerChange:
    return LayerChange(
        name=name,
        change=change,
        types=(x.type if x else None, y.type if y else None),
        output_shapes=(x.output_shapes if x else None, y.output_shapes if y else None),
        params=(x.num_params if x else None, y.num_params if y else None),
    )
