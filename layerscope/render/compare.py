"""Render stage, the views that compare: two reports (`diff`) and a model with a checkpoint (`weights`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Group
from rich.text import Text

from layerscope.render.table import Totals, cell
from layerscope.render.views import flops_text, view_table
from layerscope.report.diff import Diff
from layerscope.report.weights import STATUSES, WeightsCheck
from layerscope.spec.shapes import format_shape, format_shapes


def weights_view(check: WeightsCheck, everything: bool = False) -> Group:
    """The keys `load_state_dict(strict=True)` would refuse (every key with `everything`), then the counts."""
    table = view_table(f"{check.model} ← {check.checkpoint}", "Key", "Status", "Model shape", "Checkpoint shape")
    styles = {"ok": "green", "missing": "bold red", "unexpected": "bold red", "shape mismatch": "bold red"}
    for row in check.rows:
        if row.status != "ok" or everything:
            table.add_row(
                row.key,
                Text(row.status, style=styles[row.status]),
                "-" if row.expected is None else format_shape(row.expected),
                "-" if row.found is None else format_shape(row.found),
                raw=(
                    row.key,
                    row.status,
                    None if row.expected is None else format_shape(row.expected),
                    None if row.found is None else format_shape(row.found),
                ),
            )
    found = sum(row.found is not None for row in check.rows)
    totals = Totals(
        [
            ("Model keys", f"{len(check.rows) - check.count('unexpected'):,}"),
            ("Checkpoint keys", f"{found:,}"),
            ("Matching", f"{check.count('ok'):,}"),
            *((status.capitalize(), f"{check.count(status):,}") for status in STATUSES[:3]),
        ]
    )
    if check.matches:
        verdict = Text("✓ loads with load_state_dict(strict=True)", style="green")
    else:
        wrong = ", ".join(f"{check.count(s)} {s}" for s in STATUSES[:3] if check.count(s))
        verdict = Text(f"✗ load_state_dict(strict=True) would refuse it: {wrong}", style="bold red")
    notes = [cell(Text(f"note: {note}", style="yellow")) for note in check.notes]
    table.bare_when_empty = True  # nothing to list: the title alone (CSV still gets its header)
    return Group(table, totals, *notes, verdict)


def diff_view(diff: Diff, everything: bool = False) -> Group:
    """What changed from one model to the other, layer by layer (`everything`: unchanged rows too)."""
    before, after = diff.before, diff.after
    table = view_table(
        f"{before.model} → {after.model} — what changed",
        "Layer",
        "Change",
        "Type",
        "Output shape",
        "Params",
        "Δ params",
    )
    table.data_columns = [
        "layer", "change", "type_before", "type_after", "output_shape_before", "output_shape_after",
        "params_before", "params_after", "delta_params",
    ]  # fmt: skip
    for c in diff.layers if everything else diff.changed():
        (type_a, type_b), (out_a, out_b), (params_a, params_b) = c.types, c.output_shapes, c.params
        raw = (
            c.name, c.change, type_a, type_b,
            None if out_a is None else format_shapes(out_a), None if out_b is None else format_shapes(out_b),
            params_a, params_b, c.param_delta,
        )  # fmt: skip
        table.add_row(
            c.name,
            Text(c.change, style=_CHANGE_STYLES[c.change]),
            _pair(*c.types, str),
            _pair(*c.output_shapes, lambda shapes: format_shapes(shapes) or "-"),
            _pair(*c.params, lambda n: f"{n:,}" if n else "-"),
            f"{c.param_delta:+,}" if c.param_delta else "-",
            raw=raw,
        )
    counts = {kind: sum(1 for c in diff.layers if c.change == kind) for kind in ("added", "removed", "changed")}
    footer = Totals(
        [
            ("Layers", ", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" (of {len(diff.layers)})"),
            (
                "Total params",
                f"{_pair(before.total_params, after.total_params, lambda n: f'{n:,}')} ({after.total_params - before.total_params:+,})",
            ),
            ("FLOPs (forward)", _flops_pair(*(r.total_flops if r.failure is None else "-" for r in (before, after)))),
            ("Input", _pair(before.input_shapes, after.input_shapes, format_shapes)),
            ("Output", _pair(before.output_shapes, after.output_shapes, lambda s: format_shapes(s) or "-")),
        ]
    )
    failed = [r for r in (before, after) if r.failure is not None]
    if not diff.differs():
        table.title += ": nothing"  # an empty table would look like a failure to compare
    left_out = (
        [
            Text(
                f"not compared: {', '.join(diff.left_out)} — functional ops of one side, function calls in the other's Python",
                style="dim",
            )
        ]
        if diff.left_out
        else []
    )
    return Group(
        table,
        footer,
        *left_out,
        *[
            cell(Text(f"{r.model} does not accept its input: {r.failure.message}", style="red"))
            for r in failed
            if r.failure
        ],
    )


_CHANGE_STYLES = {"added": "green", "removed": "red", "changed": "yellow", "same": "dim"}


def _flops_pair(before: int | str | None, after: int | str | None) -> str:
    """Two FLOP totals, where None is unknown rather than missing, and "-" a run that failed."""

    def show(flops: int | str | None) -> str:
        return flops if isinstance(flops, str) else flops_text(flops)

    return show(after) if before == after else f"{show(before)} → {show(after)}"


def _pair(before: Any, after: Any, show: Callable[[Any], str]) -> str:
    """One value if both sides agree or one is missing, else `before → after`."""
    if before is None or before == after:
        return show(after) if after is not None else "-"
    if after is None:
        return show(before)
    return f"{show(before)} → {show(after)}"
