"""File outputs: a view exported as SVG or HTML, and any text written whole or not at all."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from rich.console import Console, RenderableType

from layerscope.errors import UsageError


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
