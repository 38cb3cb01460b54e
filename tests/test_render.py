"""render.LineTable writes what rich's own Table draws, in a tenth of the time for big tables, and fits
narrow terminals without splitting a name or a shape."""

from __future__ import annotations

import io
import random

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from layerscope.render.table import LineTable

WORDS = ["linear", "conv1", "layers.0.self_attn", "1x3x224x224", "12,345", "-", "ü-umlaut", "多头注意力", ""]


def random_table(rng: random.Random, rows: int, plain: bool = False) -> LineTable:
    columns = [(f"Col{i}" * rng.randint(1, 2), rng.choice(["left", "right"])) for i in range(rng.randint(1, 6))]
    table = LineTable(rng.choice(["Model — layers", "A much longer title than any table here is wide"]), columns)
    for _ in range(rows):
        cells: list[str | Text] = []
        for _ in columns:
            word = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
            kind = rng.random() if not plain else 1.0  # plain: no line breaks or spans
            if kind < 0.2:
                cells.append(Text(word, style=rng.choice(["bold", "bold red", "green"])))
            elif kind < 0.22:
                cells.append(word + "\nsecond line")
            elif kind < 0.24:
                text = Text(word)
                text.stylize("bold", 0, 1)  # a span: rich's own layout
                cells.append(text)
            else:
                cells.append(word.strip() if plain else word)
        table.add_row(*cells)
    return table


def printed(renderable: object, width: int, color: bool) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=color, color_system="truecolor" if color else None).print(renderable)
    return out.getvalue()


def stripped(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.splitlines())


def natural_width(table: LineTable) -> int:
    widths = [max(cell_len(str(c)) for c in column) for column in zip(*table.data(), strict=True)]
    return max(2 + sum(widths) + 3 * (len(widths) - 1), cell_len(table.title))


def laid_out_by_rich(table: LineTable) -> bool:
    return any(
        (isinstance(c, Text) and (c.spans or "\n" in c.plain)) or "\n" in str(c) or str(c)[-1:].isspace()
        for row in table.rows
        for c in row
    )


@pytest.mark.parametrize("seed", range(60))
def test_line_table_prints_what_rich_table_prints_where_it_fits(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, rng.randint(0, 12))
    width = max(natural_width(table), rng.choice([40, 80, 120, 200]))
    ours, theirs = printed(table, width, color=False), printed(table.rich_table(), width, color=False)
    # rich wraps a title to the table's width; ours keeps it on one line where the console allows
    assert stripped(ours).split("\n\n", 1)[1:] == stripped(theirs).split("\n\n", 1)[1:]


@pytest.mark.parametrize("seed", range(20))
def test_line_table_styles_what_rich_table_styles(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, rng.randint(1, 6))
    if natural_width(table) > 200 or laid_out_by_rich(table):
        pytest.skip("laid out by rich itself")
    ours = printed(table, 200, color=True).splitlines()
    theirs = printed(table.rich_table(), 200, color=True).splitlines()
    ours, theirs = ours[ours.index("") :], theirs[[stripped(t) for t in theirs].index("") :]  # titles wrap apart
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):  # the same but for the spaces rich pads each line with
        assert b.startswith(a.rstrip(" ").removesuffix("\x1b[0m")) or stripped(a) == stripped(b)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("width", [30, 60])
def test_a_narrow_table_never_splits_a_cell_and_ends_no_line_in_spaces(seed: int, width: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, rng.randint(1, 10), plain=True)
    lines = printed(table, width, color=False).splitlines()
    assert all(line == line.rstrip() for line in lines)
    body = lines[lines.index(next(line for line in lines if set(line.strip()) == {"─"})) + 1 :]
    body = body[: body.index("")]  # the rows, not the note on what was left out
    words = {w for row in table.rows for c in row for w in str(c).split()}
    for line in body:
        for token in line.split():
            # each word shown is one of the table's words, or a word shortened in the middle
            assert token in words or "…" in token, (token, line)


def test_columns_are_left_out_in_the_documented_order_and_named() -> None:
    table = LineTable(
        "Net — layers",
        [("Layer", "left"), ("Type", "left"), ("Output shape", "left"), ("Params", "right"), ("% of total", "right")],
        drop=("% of total", "Type"),
    )
    table.add_row("conv1", "Conv2d", "1x6x28x28", "156", "0.2%")
    table.add_row("layers.0.self_attention.q_proj", "Linear", "1x128x768", "590,592", "80.1%")
    wide = printed(table, 80, color=False)
    assert "% of total" in wide and "left out" not in wide
    narrow = printed(table, 70, color=False)
    assert "% of total" not in narrow.split("(")[0] and "Type" in narrow
    assert "(% of total: left out to fit 70 columns)" in narrow and "…" not in narrow
    narrower = printed(table, 60, color=False)
    assert "(% of total, Type: left out to fit 60 columns)" in narrower and "…" not in narrower
    narrowest = printed(table, 40, color=False)
    # names shorten (to 16 cells at least), shapes never: the rightmost column goes first
    assert "layers.0.se…tion.q_proj" in narrowest and "1x128x768" in narrowest and "590,592" not in narrowest
    note = " ".join(narrowest.split("\n\n")[2].split())
    assert note == "(% of total, Type, Params: left out, and names shortened to fit 40 columns)"
    assert all(len(line) <= 40 for line in narrowest.splitlines())


def test_names_are_shortened_in_the_middle() -> None:
    from layerscope.render.table import middle_ellipsis

    assert middle_ellipsis("max_pool2d_1", 8) == "max_…d_1"
    assert middle_ellipsis("conv1", 8) == "conv1"
    assert middle_ellipsis("多头注意力层", 7) == "多头…层"
    assert all(cell_len(middle_ellipsis("layers.0.self_attn.q_proj", n)) <= n for n in range(1, 30))


def test_plain_rows_are_written_directly_and_the_rest_by_rich() -> None:
    from rich.table import Table

    console = Console(file=io.StringIO(), width=80)
    table = LineTable("T — layers", [("Layer", "left"), ("Params", "right")])
    table.add_row(Text("T", style="bold"), "1,000")
    table.add_row("  fc", "1,000")
    assert not any(isinstance(part, Table) for part in table.__rich_console__(console, console.options))
    table.add_row(("a name longer than the console is wide " * 3).strip(), "1")
    assert not any(isinstance(part, Table) for part in table.__rich_console__(console, console.options))
    table.add_row("two\nlines", "1")
    assert [type(part) for part in table.__rich_console__(console, console.options)] == [Table]
