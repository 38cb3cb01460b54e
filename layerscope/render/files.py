"""File outputs: a view exported as SVG or HTML, and any text written whole or not at all."""

from __future__ import annotations

import io
import os
import stat
import sys
import tempfile
from pathlib import Path

from rich.console import Console, RenderableType

from layerscope.errors import UsageError, file_kind


def export(renderable: RenderableType, path: Path, width: int = 120) -> None:
    """Write a view as SVG or HTML with rich's exporters; the file appears whole or not at all."""
    kind = path.suffix.lower()
    if kind not in (".svg", ".html", ".htm"):
        raise UsageError(f"cannot export to {path.name!r}", hint="name a .svg or .html file, e.g. --export report.svg")
    console = Console(file=io.StringIO(), width=width, record=True, force_terminal=True, color_system="truecolor")
    console.print(renderable)
    write_whole(path, console.export_svg(title=f"layerscope {path.stem}") if kind == ".svg" else console.export_html())


def write_whole(path: Path, text: str) -> None:
    """Write `text` to `path`, whole or not at all, replacing nothing but a regular file.

    The target must be absent or a regular file the mode bits let its owner write (checked, not
    left to the OS: as root it would write anyway); a symlink is written through, the link kept;
    a directory, device, FIFO or socket is refused, and so is the file of any loaded module (the
    Python model's own code, a module it imports), named directly or through a link. The text goes
    to a temporary file beside the target, renamed over it at the end, and removed on every way out
    short of that, Ctrl-C included.
    """
    target = _target(path)
    temporary: str | None = None
    try:
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        os.chmod(temporary, _mode(target))
        os.replace(temporary, target)
        temporary = None
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}", hint="choose a writable directory") from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _target(path: Path) -> Path:
    """The file to write for `path`: itself, or what its symlink points at; refused unless regular or absent."""
    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        link = False
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    target = Path(os.path.realpath(path)) if link else path
    try:
        info = os.stat(target)
    except FileNotFoundError:
        if link:
            raise UsageError(
                f"{path} is a symlink to {target}, which does not exist", hint="name the file itself"
            ) from None
        if not target.parent.is_dir():
            raise UsageError(f"cannot write {path}: no directory {target.parent}") from None
        return target
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is {file_kind(info.st_mode)}; it was left as it is", hint="name a file")
    module = _module_from(target, info)
    if module is not None:
        shown = path if target == path else f"{path} (a symlink to {target})"
        raise UsageError(
            f"{shown} is the code of the imported module {module!r}; it was left as it is", hint="name another file"
        )
    if not info.st_mode & stat.S_IWUSR:
        raise UsageError(
            f"{path} is read-only; it was left as it is", hint="name another file, or make it writable first"
        )
    return target


def _module_from(target: Path, info: os.stat_result) -> str | None:
    """The name of a loaded module whose source (or compiled) file `target` is — a Python model
    imported for this command, the file beside it it imports, layerscope's own — else None."""
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if not isinstance(where, str) or Path(where).name != target.name:
            continue
        try:
            found = os.stat(where)
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (info.st_dev, info.st_ino):
            return name
    return None


def _mode(target: Path) -> int:
    """The new file's mode: the replaced file's, else an ordinary new file's (not mkstemp's 0600)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
