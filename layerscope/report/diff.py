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
    left_out: list[str] = field(default_factory=list)  # functional ops of one side the other cannot have

    def changed(self) -> list[LayerChange]:
        return [layer for layer in self.layers if layer.change != "same"]

    def differs(self) -> bool:
        """Whether the models differ: a layer, a total, an input or an output shape."""
        a, b = self.before, self.after
        totals = (a.total_params, a.trainable_params, a.total_flops, a.input_shapes, a.output_shapes)
        return bool(self.changed()) or totals != (
            b.total_params, b.trainable_params, b.total_flops, b.input_shapes, b.output_shapes
        )  # fmt: skip

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
            "differs": self.differs(),
            "left_out": self.left_out,
        }


def _rows(report: Report, functional: bool) -> list[LayerRecord]:
    """Each call of a module (a module called twice, as `use:` does, has two rows), the model's own
    row aside; without `functional`, the spec's functional ops left out."""
    return [r for r in report.layers if r.depth > 0 and (functional or not r.functional)]


def _has_functional(report: Report) -> bool:
    return any(r.functional for r in report.layers)


def compare(before: Report, after: Report) -> Diff:
    """Match the layers of two reports by qualified name (and type), in order.

    A spec writes `relu` or `add` as a layer where Python calls a function, which no hook sees:
    when only one side has such layers (a spec and its Python twin), they are left out of the
    comparison and named in `left_out`, so the twins match layer for layer."""
    functional = _has_functional(before) == _has_functional(after)
    a, b = _rows(before, functional), _rows(after, functional)
    diff = Diff(before, after)
    if not functional:
        diff.left_out = sorted({r.type for r in (*before.layers, *after.layers) if r.functional})
    matcher = difflib.SequenceMatcher(a=[x.name for x in a], b=[y.name for y in b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for x, y in zip(a[i1:i2], b[j1:j2], strict=True):
                same = (x.type, x.output_shapes, _params(x)) == (y.type, y.output_shapes, _params(y))
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
        params=(_params(x) if x else None, _params(y) if y else None),
    )


def _params(layer: LayerRecord) -> int:
    """A layer's own parameters: none for a second call of a module, whose are counted at the first."""
    return 0 if layer.shared_with is not None else layer.num_params
