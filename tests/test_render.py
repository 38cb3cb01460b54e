"""render.LineTable writes what rich's own Table draws, in a tenth of the time for big tables."""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console
from rich.text import Text

from layerscope.render.table import LineTable

WORDS = ["linear", "conv1", "layers.0.self_attn", "1x3x224x224", "12,345", "-", "ü-umlaut", "多头注意力", ""]


def random_table(rng: random.Random, rows: int) -> LineTable:
    columns = [(f"Col{i}" * rng.randint(1, 2), rng.choice(["left", "right"])) for i in range(rng.randint(1, 6))]
    table = LineTable(rng.choice(["Model — layers", "A much longer title than any table here is wide"]), columns)
    for _ in range(rows):
        cells: list[str | Text] = []
        for _ in columns:
            word = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
            kind = rng.random()
            if kind < 0.2:
                cells.append(Text(word, style=rng.choice(["bold", "bold red", "green"])))
            elif kind < 0.22:
                cells.append(word + "\nsecond line")
            elif kind < 0.24:
                text = Text(word)
                text.stylize("bold", 0, 1)  # a span: rich's own layout
                cells.append(text)
            else:
                cells.append(word)
        table.add_row(*cells)
    return table


def printed(renderable: object, width: int, color: bool) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=color, color_system="truecolor" if color else None).print(renderable)
    return out.getvalue()


@pytest.mark.parametrize("seed", range(60))
def test_line_table_prints_what_rich_table_prints(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, rng.randint(0, 12))
    width = rng.choice([40, 80, 120, 200])
    assert printed(table, width, color=False) == printed(table.rich_table(), width, color=False)


@pytest.mark.parametrize("seed", range(20))
def test_line_table_styles_what_rich_table_styles(seed: int) -> None:
    rng = random.Random(seed)
    table = random_table(rng, rng.randint(1, 6))
    assert printed(table, 200, color=True) == printed(table.rich_table(), 200, color=True)


def test_plain_rows_are_written_directly_and_the_rest_by_rich() -> None:
    from rich.table import Table

    console = Console(file=io.StringIO(), width=80)
    table = LineTable("T — layers", [("Layer", "left"), ("Params", "right")])
    table.add_row(Text("T", style="bold"), "1,000")
    table.add_row("  fc", "1,000")
    assert not any(isinstance(part, Table) for part in table.__rich_console__(console, console.options))
    table.add_row("a name longer than the console is wide " * 3, "1")
    assert [type(part) for part in table.__rich_console__(console, console.options)] == [Table]
