"""The building blocks of the views: a fast plain table, a totals grid, and number formatting."""

from __future__ import annotations

from collections.abc import Iterator

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from layerscope.errors import inert


def cell(value: str | Text) -> Text:
    """A table cell from text that may hold a user's names: never read as rich markup, control
    characters shown as escapes (a Text's own style kept)."""
    if isinstance(value, Text):
        plain = inert(value.plain)
        return value if plain == value.plain else Text(plain, style=value.style)
    return Text(inert(value))


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


class LineTable:
    """A titled table with a rule under its header, as rich's Table draws it with SIMPLE_HEAD,
    written line by line while every cell fits on one line within the console's width.

    rich lays out and renders each cell on its own (~40 µs), which made a 10,000-layer model's
    table take 4 s; writing the lines directly takes a tenth of that. Whatever rich would lay out
    otherwise (a cell with a line break, a styled span, a row or title wider than the console)
    is drawn by rich's Table itself (`rich_table`), so the output is the same either way (tested).
    """

    def __init__(self, title: str, columns: list[tuple[str, str]]):
        self.title = inert(title, newlines=False)
        self.columns = columns  # (header, "left" or "right")
        self.rows: list[tuple[str | Text, ...]] = []
        self.keys: list[str | None] = []  # per row, what data formats write in the first column

    def add_row(self, *cells: str | Text, key: str | None = None) -> None:
        """A row; `key` (a layer's qualified name) stands for the first cell in markdown and csv."""
        self.rows.append(tuple(cell(c) if isinstance(c, Text) else inert(c) for c in cells))
        self.keys.append(inert(key) if key is not None else None)

    def data(self) -> list[list[str]]:
        """The header and the rows as plain text, each first cell its row's key where it has one."""
        rows = [[h for h, _ in self.columns]]
        for key, row in zip(self.keys, self.rows, strict=True):
            cells = [c.plain if isinstance(c, Text) else c for c in row]
            rows.append([key, *cells[1:]] if key is not None else cells)
        return rows

    def rich_table(self) -> Table:
        """The same table laid out by rich's own Table, for what the line-by-line writer cannot draw."""
        table = Table(
            title=Text(self.title, style="table.title"), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
        )
        for header, justify in self.columns:
            table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for row in self.rows:
            table.add_row(*(Text(c) if isinstance(c, str) else c for c in row))  # made inert by add_row
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
        rule = "-" if options.ascii_only else "─"  # as rich's own tables do where the encoding has no box drawing
        yield Segment(" " + rule * (width - 2) + " ")
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
            grid.add_row(cell(label), cell(value))
        return grid
