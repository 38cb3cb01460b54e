"""The building blocks of the views: a fast plain table, a totals grid, and number formatting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

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
    written line by line, made to fit the console's width without splitting a name or a shape.

    rich lays out and renders each cell on its own (~40 µs), which made a 10,000-layer model's
    table take 4 s; writing the lines directly takes a tenth of that. rich would also fold a name
    or a shape across lines where the console is narrow (`1x6x28x` / `28`). Too wide a table
    leaves out the columns named in `drop`, in that order, then wraps the prose columns (`wrap`)
    between words, then shortens names in the middle (`max_p…2d_1`), and says what it left out.
    A cell with a line break or a styled span is laid out by rich's Table itself (`rich_table`).
    """

    def __init__(
        self,
        title: str,
        columns: list[tuple[str, str]],
        drop: tuple[str, ...] = (),
        wrap: tuple[str, ...] = (),
        whole: tuple[str, ...] = (),
    ):
        self.title = inert(title, newlines=False)
        self.columns = columns  # (header, "left" or "right")
        self.drop = drop  # headers of the columns left out, in this order, when the table is too wide
        self.wrap = wrap  # headers of the columns of prose, wrapped between words when too wide
        self.whole = whole  # headers of the columns never shortened (shapes), as numbers never are
        self.rows: list[tuple[str | Text, ...]] = []
        self.keys: list[str | None] = []  # per row, what data formats write in the first column
        self.raw: list[tuple[Raw, ...] | None] = []  # per row, its values as data (CSV)
        self.data_columns: list[str] | None = None  # the names of those values, where not one per column
        self.bare_when_empty = False  # without rows, print the title alone

    def add_row(self, *cells: str | Text, key: str | None = None, raw: tuple[Raw, ...] | None = None) -> None:
        """A row; `key` (a layer's qualified name) stands for the first cell in markdown and csv;
        `raw` holds the row's values as data, for CSV: numbers unformatted, None where there is none."""
        self.rows.append(tuple(cell(c) if isinstance(c, Text) else inert(c) for c in cells))
        self.keys.append(inert(key) if key is not None else None)
        self.raw.append(raw)

    def records(self) -> list[list[str]]:
        """The table as data: a header of snake_case column names, then each row's raw values
        (`81290`, `0.2`, `true`, an empty cell for none), else its text."""
        rows = [self.data_columns or [_data_name(h) for h, _ in self.columns]]
        for text, raw in zip(self.data()[1:], self.raw, strict=True):
            rows.append(text if raw is None else [_data_value(v) for v in raw])
        return rows

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
        if self.bare_when_empty and not self.rows:
            yield Text(self.title + "\n", style="table.title")
            return
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
        columns = [_Column(h, j, h in self.wrap, h in self.whole) for h, j in self.columns]
        longest = {  # a prose column's longest word: what its wrapping must fit
            i: max((cell_len(w) for row in self.rows for w in _plain(row[i]).split()), default=0)
            for i, c in enumerate(columns)
            if c.prose
        }
        natural = widths
        shown, widths = fitted(columns, natural, self.drop, longest, options.max_width)
        title_style = console.get_style("table.title")
        for line in Text(self.title).wrap(console, options.max_width):  # a long title wrapped between words
            yield Segment(line.plain.rstrip(), title_style)
            yield Segment.line()
        yield Segment.line()
        picked = [columns[i] for i in shown]
        yield from _lines(console, [header[i] for i in shown], picked, widths, console.get_style("table.header"))
        rule = "-" if options.ascii_only else "─"  # as rich's own tables do where the encoding has no box drawing
        yield Segment(" " + rule * (_width(widths) - 2))
        yield Segment.line()
        for row in self.rows:
            yield from _lines(console, [row[i] for i in shown], picked, widths, None)
        yield Segment.line()
        hidden = [h for h in (*self.drop, *header) if h in header and header.index(h) not in shown]
        shortened = any(longest.get(i, natural[i]) > w for i, w in zip(shown, widths, strict=True))
        if hidden or shortened:
            parts = [f"{', '.join(dict.fromkeys(hidden))}: left out"] if hidden else []
            parts += ["names shortened"] if shortened else []
            what = ", and ".join(parts)
            note = Text(f"({what} to fit {options.max_width} columns)")
            for line in note.wrap(console, options.max_width):
                yield Segment(line.plain.rstrip(), Style(dim=True))
                yield Segment.line()
            yield Segment.line()


Raw = str | int | float | bool | None


def _data_name(header: str) -> str:
    """A column's name in data formats: `Output shape` → `output_shape`, `% of total` → `percent_of_total`."""
    words = re.findall(r"[a-z0-9]+", header.lower().replace("%", "percent").replace("δ", "delta"))
    return "_".join(words)


def _data_value(value: Raw) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return inert(str(value), newlines=False)


class _Column(NamedTuple):
    header: str
    justify: str
    prose: bool  # wrapped between words rather than shortened
    whole: bool  # shapes: never shortened (1x…32 would read as another shape)


def _width(widths: list[int]) -> int:
    """A table's width: edges and dividers are one space each; cells are padded by one space but at the edges."""
    return 2 + sum(widths) + 3 * (len(widths) - 1)


def fitted(
    columns: list[_Column],
    widths: list[int],
    drop: tuple[str, ...],
    longest: dict[int, int],
    max_width: int,
) -> tuple[list[int], list[int]]:
    """Which columns to show and how wide, to fit `max_width`. First the columns named in `drop` go,
    in that order. Then prose narrows (to its longest word, up to 20 cells) and names shorten in
    the middle (to 16 cells, or their header); numbers and shapes never shorten. If that is not
    enough, the rightmost columns go, one at a time, and the rest get their room back. Only a
    console too narrow for the first column alone shortens it further."""
    header = [c.header for c in columns]
    shown = list(range(len(columns)))
    for name in drop:
        if _width([widths[i] for i in shown]) <= max_width:
            break
        if name in header and len(shown) > 1:
            shown.remove(header.index(name))
    floor = {}
    for i in shown:
        c = columns[i]
        if c.justify == "right" or c.whole:
            floor[i] = widths[i]
        elif c.prose:  # `longest`: its longest word
            floor[i] = min(widths[i], max(min(cell_len(c.header), 12), min(20, longest[i])))
        else:
            floor[i] = min(widths[i], max(min(cell_len(c.header), 12), 16))
    while True:
        sized = _narrowed(
            [widths[i] for i in shown], [floor[i] for i in shown], [columns[i].prose for i in shown], max_width
        )
        if _width(sized) <= max_width or len(shown) == 1:
            break
        shown.pop()  # the rightmost column goes; the others get their room back
    if _width(sized) > max_width:  # one column, and still too wide: it shortens as far as it must
        sized = [max(1, max_width - 2)]
    return shown, sized


def _narrowed(sized: list[int], floor: list[int], prose: list[bool], max_width: int) -> list[int]:
    """`sized` narrowed a cell at a time towards `floor`: prose first, then the widest column."""
    sized = list(sized)
    while _width(sized) > max_width:
        room = [(prose[k], sized[k], k) for k in range(len(sized)) if sized[k] > floor[k]]
        if not room:
            break
        sized[max(room)[2]] -= 1
    return sized


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _lines(
    console: Console, cells: list[str | Text], columns: list[_Column], widths: list[int], style: Style | None
) -> Iterator[Segment]:
    """One row, on as many lines as its prose needs: an edge, then each cell padded by a space (but
    at the edges) in its own style; a name wider than its column shortened in the middle; no spaces
    at the end of a line."""
    texts: list[list[str]] = []
    styles: list[Style | None] = []
    for cell, column, width in zip(cells, columns, widths, strict=True):
        text, own = (cell.plain, cell.style) if isinstance(cell, Text) else (cell, None)
        cell_style = Style.parse(own) if isinstance(own, str) and own else own or None
        if style is not None:
            cell_style = style + cell_style if cell_style else style
        styles.append(cell_style)
        if column.prose and cell_len(text) > width:
            words = " ".join(middle_ellipsis(word, width) for word in text.split())  # a long path too
            texts.append([line.plain.rstrip() for line in Text(words).wrap(console, width)] or [""])
        else:
            texts.append([middle_ellipsis(text, width)])
    edge, pad = Segment(" "), Segment(" ", style)
    for n in range(max(len(t) for t in texts)):
        line = [edge]
        for i, (lines, column, width) in enumerate(zip(texts, columns, widths, strict=True)):
            text = lines[n] if n < len(lines) else ""
            if i:
                line += [pad, edge, pad]  # the padding takes the row's style (the header's), not the text's
            fill = " " * (width - cell_len(text))
            line.append(Segment(fill + text if column.justify == "right" else text + fill, styles[i]))
        while line and not line[-1].text.strip():
            line.pop()
        if line:
            line[-1] = Segment(line[-1].text.rstrip(), line[-1].style)
        yield from line
        yield Segment.line()


def middle_ellipsis(text: str, width: int) -> str:
    """`text` within `width` cells: its start and end kept, the middle replaced by `…`."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head, tail, room = "", "", width - 1
    chars = list(text)
    while chars and room > 0:
        take_head = cell_len(head) <= cell_len(tail)
        char = chars[0] if take_head else chars[-1]
        if cell_len(char) > room:
            break
        room -= cell_len(char)
        if take_head:
            head += chars.pop(0)
        else:
            tail = chars.pop() + tail
    return head + "…" + tail


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
