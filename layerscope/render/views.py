"""Render stage: Report → rich renderables. Looks only at report data, never at torch objects."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from layerscope.errors import UsageError
from layerscope.report.diff import Diff
from layerscope.report.model import CheckResult, LayerRecord, Report, format_shape, format_shapes
from layerscope.spec.bundled import Bundled


def _scaled(n: int, base: int, units: tuple[str, ...]) -> str:
    """`n` in the largest of `units` (each `base` times the one before) that keeps it below `base`."""
    value, step = float(n), 0
    while abs(value) >= base and step < len(units) - 1:
        value, step = value / base, step + 1
    return f"{value:.0f} {units[0]}".rstrip() if step == 0 else f"{value:.2f} {units[step]}"


def human_bytes(n: int) -> str:
    """Bytes in binary units: 317.54 KiB."""
    return _scaled(n, 1024, ("B", "KiB", "MiB", "GiB", "TiB"))


def si(n: int) -> str:
    """A count in SI units: 3.63 G."""
    return _scaled(n, 1000, ("", "k", "M", "G", "T", "P"))


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
            level, label = 0, Text(report.model, style="bold")
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


def _output_cell(layer: LayerRecord) -> Text:
    if not layer.completed:
        return Text("failed", style="bold red")
    return Text(format_shapes(layer.output_shapes) or "-")


def _table(title: str, *columns: str) -> LineTable:
    return LineTable(
        title,
        [(c, "right" if c in ("Params", "% of total", "Numel", "FLOPs", "Δ params") else "left") for c in columns],
    )


class LineTable:
    """A titled table with a rule under its header, as rich's Table draws it with SIMPLE_HEAD,
    written line by line while every cell fits on one line within the console's width.

    rich lays out and renders each cell on its own (~40 µs), which made a 10,000-layer model's
    table take 4 s; writing the lines directly takes a tenth of that. Whatever rich would lay out
    otherwise (a cell with a line break, a styled span, a row or title wider than the console)
    is drawn by rich's Table itself (`rich_table`), so the output is the same either way (tested).
    """

    def __init__(self, title: str, columns: list[tuple[str, str]]):
        self.title = title
        self.columns = columns  # (header, "left" or "right")
        self.rows: list[tuple[str | Text, ...]] = []
        self.keys: list[str | None] = []  # per row, what data formats write in the first column

    def add_row(self, *cells: str | Text, key: str | None = None) -> None:
        """A row; `key` (a layer's qualified name) stands for the first cell in markdown and csv."""
        self.rows.append(cells)
        self.keys.append(key)

    def data(self) -> list[list[str]]:
        """The header and the rows as plain text, each first cell its row's key where it has one."""
        rows = [[h for h, _ in self.columns]]
        for key, row in zip(self.keys, self.rows, strict=True):
            cells = [c.plain if isinstance(c, Text) else c for c in row]
            rows.append([key, *cells[1:]] if key is not None else cells)
        return rows

    def rich_table(self) -> Table:
        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for header, justify in self.columns:
            table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in self.rows:
            table.add_row(*row)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        header = tuple(h for h, _ in self.columns)
        widths = [cell_len(h) for h in header]
        for row in self.rows:
            for i, cell in enumerate(row):
                text = cell.plain if isinstance(cell, Text) else cell
                if "\n" in text or text[-1:].isspace() or (isinstance(cell, Text) and cell.spans):
                    yield self.rich_table()  # rich wraps, strips or splits these its own way
                    return
                n = cell_len(text)
                if n > widths[i]:
                    widths[i] = n
        # edges and dividers are one space each; cells are padded by one space but at the edges
        width = 2 + sum(widths) + 3 * (len(widths) - 1)
        if width > options.max_width or cell_len(self.title) > width:
            yield self.rich_table()
            return
        blank, new_line = Segment(" " * width), Segment.line()
        yield Segment(self.title + " " * (width - cell_len(self.title)), console.get_style("table.title"))
        yield new_line
        yield blank
        yield new_line
        yield from self._line(header, widths, console.get_style("table.header"))
        yield Segment(" " + "─" * (width - 2) + " ")
        yield new_line
        for row in self.rows:
            yield from self._line(row, widths, None)
        yield blank
        yield new_line

    def _line(self, cells: tuple[str | Text, ...], widths: list[int], style: Style | None) -> Iterator[Segment]:
        """One row: an edge, then each cell padded by a space (but at the edges) in its own style."""
        edge, last = Segment(" "), len(cells) - 1
        yield edge
        for i, (cell, (_, justify)) in enumerate(zip(cells, self.columns, strict=True)):
            text, own = (cell.plain, cell.style) if isinstance(cell, Text) else (cell, None)
            cell_style = Style.parse(own) if isinstance(own, str) and own else own or None
            if style is not None:
                cell_style = style + cell_style if cell_style else style
            pad = Segment(" ", style)  # the padding takes the row's style (the header's), not the text's
            if i:
                yield edge  # the divider
                yield pad
            fill = " " * (widths[i] - cell_len(text))
            yield Segment(fill + text if justify == "right" else text + fill, cell_style)
            if i < last:
                yield pad
        yield edge
        yield Segment.line()


class Totals:
    """The label/value grid printed under a table."""

    def __init__(self, rows: list[tuple[str, str]]):
        self.rows = rows

    def __rich__(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(justify="right")
        for label, value in self.rows:
            grid.add_row(label, value)
        return grid


def _dtypes(report: Report) -> str:
    return "/".join(dict.fromkeys(p.dtype for p in report.params if p.counted)) or "no parameters"


def _summary(report: Report) -> Totals:
    done = report.failure is None
    return Totals(
        [
            ("Total params", f"{report.total_params:,}"),
            ("Trainable params", f"{report.trainable_params:,}"),
            ("Non-trainable params", f"{report.non_trainable_params:,}"),
            ("FLOPs (forward)", si(report.total_flops) if done else "-"),
            ("MACs", si(report.total_flops // 2) if done else "-"),
            ("Input", format_shapes(report.input_shapes)),
            ("Output", format_shapes(report.output_shapes) if done else "-"),
            (f"Memory ({_dtypes(report)})", ""),
            ("  Input", human_bytes(report.input_bytes)),
            ("  Parameters", human_bytes(report.param_bytes)),
            ("  Forward activations", human_bytes(report.activation_bytes) if done else "-"),
            ("  Total", human_bytes(report.total_bytes) if done else "-"),
        ]
    )


def _failure(report: Report) -> RenderableType:
    failure = report.failure
    assert failure is not None
    layer = failure.layer or report.model
    table = Table(
        title=f"✗ {layer} ({failure.type}) does not accept its input",
        title_justify="left",
        title_style="bold red",
        box=box.SIMPLE_HEAD,
        show_header=False,
        pad_edge=False,
    )
    table.add_column(style="bold red", no_wrap=True)
    table.add_column(overflow="fold")
    if failure.source:
        table.add_row("Defined at", failure.source)
    table.add_row("Got", format_shapes(failure.got) or "-")
    if failure.expected:
        table.add_row("Expected", failure.expected)
    steps = [f"input {format_shapes(report.input_shapes)}"] + [
        f"{s.name} {format_shapes(s.output_shapes)}" for s in failure.chain
    ]
    table.add_row("Shapes", " → ".join([*steps, f"{layer} ✗"]))
    table.add_row("Why", failure.message)
    if failure.error and failure.error != failure.message:
        table.add_row("torch says", failure.error)
    for i, hint in enumerate(failure.hints):
        table.add_row("Fix" if i == 0 else "", hint)
    return table


def _tail(report: Report) -> list[RenderableType]:
    parts: list[RenderableType] = []
    if report.notes:
        notes = Table.grid(padding=(0, 1))
        notes.add_column(style="yellow")
        notes.add_column(overflow="fold")
        for note in report.notes:
            notes.add_row("note:", f"{note.layer or report.model}: {note.message}")
        parts.append(notes)
    if report.failure is not None:
        parts.append(_failure(report))
    return parts


def inspect_view(report: Report, depth: int | None = None) -> Group:
    """The layer tree: name, type, output shape, params, share of the total, FLOPs."""
    table = _table(f"{report.model} — layers", "Layer", "Type", "Output shape", "Params", "% of total", "FLOPs")
    for layer, label in _visible_layers(report, depth):
        table.add_row(
            label,
            layer.type,
            _output_cell(layer),
            _params_cell(layer),
            _percent_cell(layer, report.total_params),
            si(layer.flops) if layer.flops else "-",
            key=layer.name or report.model,
        )
    return Group(table, _summary(report), *_tail(report))


def shapes_view(report: Report, depth: int | None = None) -> Group:
    """Per-layer input and output shapes, in call order."""
    table = _table(f"{report.model} — shapes", "Layer", "Type", "Input shape", "Output shape")
    for layer, label in _visible_layers(report, depth):
        table.add_row(
            label,
            layer.type,
            format_shapes(layer.input_shapes) or "-",
            _output_cell(layer),
            key=layer.name or report.model,
        )
    return Group(table, *_tail(report))


def params_view(report: Report) -> Group:
    """Every parameter: name, shape, count, dtype, trainable, and what it is tied to."""
    table = _table(f"{report.model} — parameters", "Parameter", "Shape", "Numel", "Dtype", "Trainable", "Tied to")
    for p in report.params:
        numel = f"{p.numel:,}" if p.counted else f"({p.numel:,})"
        table.add_row(
            p.name,
            format_shape(p.shape),
            numel,
            p.dtype,
            "yes" if p.trainable else "no",
            ", ".join(p.shared_with) or "-",
        )
    tied = sum(1 for p in report.params if not p.counted)
    footer = Totals(
        [
            ("Total params", f"{report.total_params:,}"),
            *([("Tied names (counted once)", f"{tied}")] if tied else []),
            ("Trainable params", f"{report.trainable_params:,}"),
            ("Param memory", human_bytes(report.param_bytes)),
        ]
    )
    return Group(table, footer, *_tail(report))


def check_view(model: str, results: list[CheckResult]) -> Group:
    """Which candidate inputs the model accepts; for the others, where and why it fails."""
    table = _table(f"{model} — which inputs fit", "Input", "Fits", "Output shape / failing layer", "Why")
    for r in results:
        if r.failure is None:
            table.add_row(format_shapes(r.input_shapes), Text("yes", style="green"), format_shapes(r.output_shapes), "")
        else:
            where = f"{r.failure.layer} ({r.failure.type})" + (f" at {r.failure.source}" if r.failure.source else "")
            table.add_row(format_shapes(r.input_shapes), Text("no", style="bold red"), where, r.failure.message)
    fitting = sum(r.fits for r in results)
    return Group(table, Text(f"{fitting} of {len(results)} input(s) fit"))


def check_json(model: str, results: list[CheckResult]) -> str:
    """The check results serialised."""
    return json.dumps({"model": model, "results": [asdict(r) for r in results]}, indent=2)


def bundled_view(specs: list[Bundled]) -> LineTable:
    """The bundled specs with their one-line descriptions."""
    table = _table("Bundled specs (use the name in place of a file)", "Name", "Description")
    for spec in specs:
        table.add_row(spec.name, spec.description)
    return table


def diff_view(diff: Diff, everything: bool = False) -> Group:
    """What changed from one model to the other, layer by layer (`everything`: unchanged rows too)."""
    before, after = diff.before, diff.after
    table = _table(
        f"{before.model} → {after.model} — what changed",
        "Layer",
        "Change",
        "Type",
        "Output shape",
        "Params",
        "Δ params",
    )
    for c in diff.layers if everything else diff.changed():
        table.add_row(
            c.name,
            Text(c.change, style=_CHANGE_STYLES[c.change]),
            _pair(*c.types, str),
            _pair(*c.output_shapes, lambda shapes: format_shapes(shapes) or "-"),
            _pair(*c.params, lambda n: f"{n:,}" if n else "-"),
            f"{c.param_delta:+,}" if c.param_delta else "-",
        )
    counts = {kind: sum(1 for c in diff.layers if c.change == kind) for kind in ("added", "removed", "changed")}
    footer = Totals(
        [
            ("Layers", ", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" (of {len(diff.layers)})"),
            (
                "Total params",
                f"{_pair(before.total_params, after.total_params, lambda n: f'{n:,}')} ({after.total_params - before.total_params:+,})",
            ),
            ("FLOPs (forward)", _pair(before.total_flops, after.total_flops, si)),
            ("Input", _pair(before.input_shapes, after.input_shapes, format_shapes)),
            ("Output", _pair(before.output_shapes, after.output_shapes, lambda s: format_shapes(s) or "-")),
        ]
    )
    failed = [r for r in (before, after) if r.failure is not None]
    return Group(
        table,
        footer,
        *[Text(f"{r.model} does not accept its input: {r.failure.message}", style="red") for r in failed if r.failure],
    )


_CHANGE_STYLES = {"added": "green", "removed": "red", "changed": "yellow", "same": "dim"}


def _pair(before: Any, after: Any, show: Callable[[Any], str]) -> str:
    """One value if both sides agree or one is missing, else `before → after`."""
    if before is None or before == after:
        return show(after) if after is not None else "-"
    if after is None:
        return show(before)
    return f"{show(before)} → {show(after)}"


def to_markdown(view: RenderableType) -> str:
    """A view as Markdown: its tables as pipe tables (layers by qualified name), its totals as a
    two-column table, anything else (a diagnosis, notes) as a text block."""
    parts = []
    for part in _parts(view):
        if isinstance(part, LineTable):
            rows = part.data()
            align = ["---:" if justify == "right" else "---" for _, justify in part.columns]
            lines = [_pipe_row(rows[0]), _pipe_row(align), *(_pipe_row(r) for r in rows[1:])]
            parts.append(f"**{_escape(part.title)}**\n\n" + "\n".join(lines))
        elif isinstance(part, Totals):
            lines = ["| | |", "| --- | ---: |", *(_pipe_row([_indent(label), value]) for label, value in part.rows)]
            parts.append("\n".join(lines))
        else:
            parts.append("```text\n" + plain_text(part).rstrip() + "\n```")
    return "\n\n".join(parts) + "\n"


def to_csv(view: RenderableType) -> str:
    """A view's main table as CSV: a header row, then one row per layer, parameter or candidate."""
    table = next(p for p in _parts(view) if isinstance(p, LineTable))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table.data())
    return out.getvalue()


def _parts(view: RenderableType) -> list[RenderableType]:
    """A view's pieces: a Group's renderables, else the view itself."""
    return list(view.renderables) if isinstance(view, Group) else [view]


def _pipe_row(cells: list[str]) -> str:
    return "| " + " | ".join(_escape(c) for c in cells) + " |"


def _indent(label: str) -> str:
    """Markdown drops leading spaces; non-breaking ones keep a sub-row's indent."""
    return "&nbsp;" * (len(label) - len(label.lstrip(" "))) + label.lstrip(" ")


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def plain_text(renderable: RenderableType, width: int = 120) -> str:
    """What a renderable prints on a console without colour."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]


def export(renderable: RenderableType, path: Path, width: int = 120) -> None:
    """Write a view as SVG or HTML with rich's exporters; the file appears whole or not at all."""
    kind = path.suffix.lower()
    if kind not in (".svg", ".html", ".htm"):
        raise UsageError(f"cannot export to {path.name!r}", hint="name a .svg or .html file, e.g. --export report.svg")
    console = Console(file=io.StringIO(), width=width, record=True, force_terminal=True, color_system="truecolor")
    console.print(renderable)
    write_whole(path, console.export_svg(title=f"layerscope {path.stem}") if kind == ".svg" else console.export_html())


def write_whole(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it: the file appears whole or not at all."""
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".part") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(f.name, 0o666 & ~umask)  # as an ordinary new file, not the temporary file's 0600
        os.replace(f.name, path)
    except OSError as e:
        if "f" in locals():
            Path(f.name).unlink(missing_ok=True)
        raise UsageError(f"cannot write {path}: {e.strerror or e}", hint="choose a writable directory") from None


def to_json(report: Report) -> str:
    """The report serialised: the stable contract for scripts."""
    return json.dumps(report.to_dict(), indent=2)
