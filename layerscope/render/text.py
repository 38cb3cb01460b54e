"""Text outputs: the report as JSON, and any view as Markdown, CSV or plain text."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict

from rich.console import Console, Group, RenderableType

from layerscope.errors import inert
from layerscope.render.table import LineTable, Totals
from layerscope.report.model import CheckResult, Failure, Report


def to_json(report: Report) -> str:
    """The report serialised: the stable contract for scripts."""
    return json.dumps(report.to_dict(), indent=2)


def check_json(model: str, results: list[CheckResult]) -> str:
    """The check results serialised."""
    return json.dumps({"model": model, "results": [asdict(r) for r in results]}, indent=2)


def failure_line(failure: Failure, model: str) -> str:
    """A failed run in one line, for stderr: where (`file:line:col` or `file:line`), what, and the first fix."""
    where = failure.source or (failure.raised_at or failure.called_at or "").partition(" in ")[0] or model
    layer = f"{failure.layer or model} ({failure.type})"
    if failure.kind == "bug":
        code = (failure.raised_at or "").partition(" in ")[2].partition(":")[0] or "the model's code"
        what = f"{layer}: {code} raised {failure.error_type}: {failure.message} — a bug in the model's code"
    else:
        what = f"{layer} does not accept its input: {failure.message}"
    fix = f" — {failure.hints[0]}" if failure.hints else ""
    return inert(f"{where}: {what}{fix}", newlines=False)


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
            lines = [
                "| | |",
                "| --- | ---: |",
                *(f"| {_indent(label)} | {_escape(value)} |" for label, value in part.rows),
            ]
            parts.append("\n".join(lines))
        else:
            parts.append(_fenced(plain_text(part).rstrip()))
    return "\n\n".join(parts) + "\n"


def to_csv(view: RenderableType) -> str:
    """A view's main table as CSV, as data: a header row of snake_case names, then one row per
    layer, parameter or candidate, numbers unformatted and empty cells where there is none."""
    table = next(p for p in _parts(view) if isinstance(p, LineTable))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[_spreadsheet_safe(c) for c in row] for row in table.records()])
    return out.getvalue()


def _spreadsheet_safe(cell: str) -> str:
    """A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first, and not a number)
    gets a leading apostrophe, as OWASP advises; numbers stay as they are."""
    if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(cell.replace(",", "").rstrip("%"))
        except ValueError:
            return "'" + cell
    return cell


def _parts(view: RenderableType) -> list[RenderableType]:
    """A view's pieces: a Group's renderables, else the view itself."""
    return list(view.renderables) if isinstance(view, Group) else [view]


def _pipe_row(cells: list[str]) -> str:
    return "| " + " | ".join(_escape(c) for c in cells) + " |"


def _indent(label: str) -> str:
    """Markdown drops leading spaces; non-breaking ones keep a sub-row's indent."""
    return "&nbsp;" * (len(label) - len(label.lstrip(" "))) + _escape(label.lstrip(" "))


_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*[]|~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})


def _escape(text: str) -> str:
    """A cell's text as Markdown shows it, never as markup: emphasis, links, code, pipes and HTML
    escaped, control characters shown as escapes, the cell kept on one line."""
    return inert(text, newlines=False).translate(_MARKDOWN)


def _fenced(text: str) -> str:
    """`text` in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{inert(text)}\n{fence}"


def plain_text(renderable: RenderableType, width: int = 120) -> str:
    """What a renderable prints on a console without colour."""
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines())  # type: ignore[attr-defined]
