"""Render stage, one rich view per command: a Report (or check results, a diff, the bundled list) → a
table with its totals. Looks only at plain data, never at torch objects."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from layerscope.render.table import LineTable, Totals, cell, human_bytes, si
from layerscope.render.train import saved_cell, train_rows
from layerscope.report.model import CheckResult, LayerRecord, Report
from layerscope.spec.bundled import Bundled
from layerscope.spec.shapes import format_shape, format_shapes


def _visible_layers(report: Report, depth: int | None) -> list[tuple[LayerRecord, Text]]:
    """Rows of the printed tree at most `depth` levels deep (all when None), each with its label.

    A label is the name relative to the nearest listed ancestor, indented one level below it.
    Containers that never run (ModuleList) have no row, so `encoder.layers.0` is printed as
    `layers.0` one level under `encoder`, and `--depth` counts those printed levels.
    """
    rows = []
    ancestors: list[str] = []  # names of the listed rows enclosing the current one, outermost first
    for layer in report.layers:
        if layer.depth == 0:
            ancestors = []
            level, label = 0, cell(Text(report.model, style="bold"))
        else:
            while ancestors and not layer.name.startswith(ancestors[-1] + "."):
                ancestors.pop()
            parent = ancestors[-1] if ancestors else ""
            level = len(ancestors) + 1
            label = Text("  " * (level - 1) + (layer.name[len(parent) + 1 :] if parent else layer.name))
            ancestors.append(layer.name)
        if depth is None or level <= depth:
            rows.append((layer, label))
    return rows


def _params_cell(layer: LayerRecord) -> str:
    if layer.shared_with is not None:
        return f"shares {layer.shared_with}"
    return f"{layer.num_params:,}" if layer.num_params else "-"


def _percent_cell(layer: LayerRecord, total: int) -> str:
    if layer.shared_with is not None or not layer.num_params or not total:
        return "-"
    return f"{100 * layer.num_params / total:.1f}%"


def _percent(layer: LayerRecord, total: int) -> float | None:
    if layer.shared_with is not None or not total:
        return None
    return round(100 * layer.num_params / total, 4)


def _params(layer: LayerRecord) -> int | None:
    return None if layer.shared_with is not None else layer.num_params


def _shapes(layer: LayerRecord) -> str | None:
    return format_shapes(layer.output_shapes) if layer.completed else None


def _output_cell(layer: LayerRecord) -> Text:
    if not layer.completed:
        return Text("failed", style="bold red")
    return Text(format_shapes(layer.output_shapes) or "-")


# The columns a narrow terminal leaves out first, in this order (README "Tables in a narrow terminal").
_DROP = ("% of total", "Start", "Type", "FLOPs", "Jump", "Dtype", "Trainable", "Tied to", "Input shape", "Δ params")
_SHAPES = ("Output shape", "Input shape", "Shape", "Input", "Model shape", "Checkpoint shape")  # never shortened


def view_table(title: str, *columns: str) -> LineTable:
    """A view's table: numbers right-aligned, shapes never shortened, columns left out in _DROP's order."""
    return LineTable(
        title,
        [
            (c, "right" if c in ("Params", "% of total", "Numel", "FLOPs", "Δ params", "Saved") else "left")
            for c in columns
        ],
        drop=_DROP,
        wrap=("Why", "Description", "Output shape / failing layer"),
        whole=_SHAPES,
    )


def _dtypes(report: Report) -> str:
    return "/".join(dict.fromkeys(p.dtype for p in report.params if p.counted)) or "no parameters"


def flops_text(flops: int | None, per: int = 1) -> str:
    """FLOPs (or MACs, `per`=2) in SI units; `unknown` where an operator could not be counted."""
    return "unknown" if flops is None else si(flops // per)


def _summary(report: Report) -> Totals:
    done = report.failure is None
    if not report.ran:
        return Totals(
            [
                ("Total params", f"{report.total_params:,}"),
                ("Trainable params", f"{report.trainable_params:,}"),
                ("Non-trainable params", f"{report.non_trainable_params:,}"),
                (f"Parameter memory ({_dtypes(report)})", human_bytes(report.param_bytes)),
                *_buffer_memory(report, "Buffer memory"),
            ]
        )
    return Totals(
        [
            ("Total params", f"{report.total_params:,}"),
            ("Trainable params", f"{report.trainable_params:,}"),
            ("Non-trainable params", f"{report.non_trainable_params:,}"),
            ("FLOPs (forward)", flops_text(report.total_flops) if done else "-"),
            ("MACs", flops_text(report.total_flops, 2) if done else "-"),
            ("Input", format_shapes(report.input_shapes)),
            ("Output", format_shapes(report.output_shapes) if done else "-"),
            (f"Memory ({_dtypes(report)})", ""),
            ("  Input", human_bytes(report.input_bytes)),
            ("  Parameters", human_bytes(report.param_bytes)),
            *_buffer_memory(report, "  Buffers"),
            ("  Forward activations", human_bytes(report.activation_bytes) if done else "-"),
            ("  Total", human_bytes(report.total_bytes) if done else "-"),
        ]
    )


def _buffer_memory(report: Report, label: str) -> list[tuple[str, str]]:
    """The memory line of the buffers (BatchNorm's running statistics), for models that have any."""
    return [(label, human_bytes(report.buffer_bytes))] if report.buffers else []


def _failure(report: Report) -> RenderableType:
    failure = report.failure
    assert failure is not None
    layer = failure.layer or report.model
    title = f"✗ {layer} ({failure.type}) does not accept its input"
    if failure.kind == "bug" and failure.raised_at:  # "models.py:16 in Net.forward: x = F.max_pool2d(...)"
        place, _, code = failure.raised_at.partition(" in ")
        function = code.partition(":")[0] or "the model's code"
        title = (
            f"✗ {layer} ({failure.type}): {function} raised {failure.error_type} at {place}, a bug in the model's code"
        )
    elif failure.kind == "bug":
        title = f"✗ {layer} ({failure.type}): the model's code raised {failure.error_type}"
    table = Table(
        title=cell(Text(title, style="bold red")),
        title_justify="left",
        title_style="bold red",
        box=box.SIMPLE_HEAD,
        show_header=False,
        pad_edge=False,
    )
    table.add_column(style="bold red", no_wrap=True)
    table.add_column(overflow="fold")
    rows: list[tuple[str, str]] = []
    if failure.source:
        rows.append(("Defined at", failure.source))
    if failure.raised_at and (failure.kind == "bug" or failure.raised_at != failure.called_at):
        rows.append(("Raised at", failure.raised_at))  # a bug: where the model's code raised
    if failure.called_at and (failure.kind != "bug" or failure.called_at != failure.raised_at):
        rows.append(("Called at", failure.called_at))
    rows.append(("Got", format_shapes(failure.got) or "-"))
    if failure.expected:
        rows.append(("Expected", failure.expected))
    steps = [f"input {format_shapes(report.input_shapes)}"] + [
        f"{s.name} {format_shapes(s.output_shapes)}" for s in failure.chain
    ]
    rows.append(("Shapes", " → ".join([*steps, f"{layer} ✗"])))
    rows.append(("Why", failure.message))
    if failure.error and failure.error != failure.message:
        rows.append(("torch says", failure.error))
    rows += [("Fix" if i == 0 else "", hint) for i, hint in enumerate(failure.hints)]
    for label, text in rows:
        table.add_row(label, cell(text))
    return table


def _tail(report: Report) -> list[RenderableType]:
    parts: list[RenderableType] = []
    if report.notes:
        notes = Table.grid(padding=(0, 1))
        notes.add_column(style="yellow")
        notes.add_column(overflow="fold")
        for note in report.notes:
            notes.add_row("note:", cell(f"{note.layer or report.model}: {note.message}"))
        parts.append(notes)
    if report.failure is not None:
        parts.append(_failure(report))
    return parts


def inspect_view(report: Report, depth: int | None = None, rf: bool = False) -> Group:
    """The layer tree: name, type, output shape, params, share of the total, FLOPs, and with `rf` the
    receptive field, jump and start (without a run: name, type and params)."""
    if not report.ran:
        table = view_table(f"{report.model} — modules", "Layer", "Type", "Params", "% of total")
        for layer, label in _visible_layers(report, depth):
            table.add_row(
                label,
                layer.type,
                _params_cell(layer),
                _percent_cell(layer, report.total_params),
                key=layer.name or report.model,
                raw=(layer.name or report.model, layer.type, _params(layer), _percent(layer, report.total_params)),
            )
        return Group(table, _summary(report), *_tail(report))
    train = report.train_memory is not None  # --train: what each call saved for backward
    extra = (*(("Saved",) if train else ()), *(_RF if rf else ()))
    columns = ("Layer", "Type", "Output shape", "Params", "% of total", "FLOPs", *extra)
    table = view_table(f"{report.model} — layers", *columns)
    for layer, label in _visible_layers(report, depth):
        fields = [_axes(layer.receptive_field), _axes(layer.jump), _axes(layer.start, ",")] if rf else []
        table.add_row(
            label,
            layer.type,
            _output_cell(layer),
            _params_cell(layer),
            _percent_cell(layer, report.total_params),
            "?" if layer.flops is None else si(layer.flops) if layer.flops else "-",
            *((saved_cell(layer),) if train else ()),
            *(f or "-" for f in fields),
            key=layer.name or report.model,
            raw=(
                layer.name or report.model,
                layer.type,
                _shapes(layer),
                _params(layer),
                _percent(layer, report.total_params),
                layer.flops if layer.completed else None,
                *((layer.saved_bytes,) if train else ()),
                *fields,
            ),
        )
    summary = _summary(report)
    summary.rows += train_rows(report)
    return Group(table, summary, *_tail(report))


_RF = ("RF", "Jump", "Start")  # --rf: receptive field, jump and start per spatial axis (report/receptive.py)


def _axes(values: list[int] | list[float] | None, sep: str = "x") -> str | None:
    """Per-axis figures as `43x43` (a start as `-0.5,0`); None off the spatial path."""
    return None if values is None else sep.join(f"{v:g}" for v in values)


def shapes_view(report: Report, depth: int | None = None) -> Group:
    """Per-layer input and output shapes, in call order."""
    table = view_table(f"{report.model} — shapes", "Layer", "Type", "Input shape", "Output shape")
    for layer, label in _visible_layers(report, depth):
        table.add_row(
            label,
            layer.type,
            format_shapes(layer.input_shapes) or "-",
            _output_cell(layer),
            key=layer.name or report.model,
            raw=(layer.name or report.model, layer.type, format_shapes(layer.input_shapes) or None, _shapes(layer)),
        )
    return Group(table, *_tail(report))


def params_view(report: Report) -> Group:
    """Every parameter, then every buffer (marked so in the Trainable column): name, shape, count,
    dtype, trainable, and what it is tied to. Buffers are in no parameter total; their own line says
    how many elements and bytes they hold."""
    table = view_table(f"{report.model} — parameters", "Parameter", "Shape", "Numel", "Dtype", "Trainable", "Tied to")
    for p in [*report.params, *report.buffers]:
        numel = f"{p.numel:,}" if p.counted else f"({p.numel:,})"
        trainable = "no (buffer)" if p.buffer else "yes" if p.trainable else "no"
        table.add_row(
            p.name,
            format_shape(p.shape),
            numel,
            p.dtype,
            trainable,
            ", ".join(p.shared_with) or "-",
            raw=(
                p.name,
                format_shape(p.shape),
                p.numel,
                p.dtype,
                "buffer" if p.buffer else p.trainable,
                " ".join(p.shared_with) or None,
            ),
        )
    tied = sum(1 for p in report.params if not p.counted)
    buffered = sum(b.numel for b in report.buffers if b.counted)
    footer = Totals(
        [
            ("Total params", f"{report.total_params:,}"),
            *([("Tied names (counted once)", f"{tied}")] if tied else []),
            ("Trainable params", f"{report.trainable_params:,}"),
            ("Param memory", human_bytes(report.param_bytes)),
            *(
                [("Buffers (not params)", f"{buffered:,} ({human_bytes(report.buffer_bytes)})")]
                if report.buffers
                else []
            ),
        ]
    )
    return Group(table, footer, *_tail(report))


def check_view(model: str, results: list[CheckResult]) -> Group:
    """Which candidate inputs the model accepts; for the others, where and why it fails."""
    table = view_table(f"{model} — which inputs fit", "Input", "Fits", "Output shape / failing layer", "Why")
    for r in results:
        if r.failure is None:
            table.add_row(
                format_shapes(r.input_shapes),
                Text("yes", style="green"),
                format_shapes(r.output_shapes),
                "",
                raw=(format_shapes(r.input_shapes), True, format_shapes(r.output_shapes), None),
            )
        else:
            where = f"{r.failure.layer} ({r.failure.type})" + (f" at {r.failure.source}" if r.failure.source else "")
            table.add_row(
                format_shapes(r.input_shapes),
                Text("no", style="bold red"),
                where,
                r.failure.message,
                raw=(format_shapes(r.input_shapes), False, where, r.failure.message),
            )
    fitting = sum(r.fits for r in results)
    return Group(table, Text(f"{fitting} of {len(results)} input(s) fit"))


def bundled_view(specs: list[Bundled]) -> LineTable:
    """The bundled specs with their one-line descriptions."""
    table = view_table("Bundled specs (use the name in place of a file)", "Name", "Description")
    for spec in specs:
        table.add_row(spec.name, spec.description)
    return table
