"""`--watch`: run a command again each time its spec file changes, for editing a spec beside a terminal.

Each run ends as it would alone (a table, or the one-line error of a broken edit, or the failing
layer of a model that rejects its input), then the command waits for the next save. The spec's
folder is watched, not the file, so an editor that saves by writing a new file and renaming it
(vim, most IDEs) is followed too. Ctrl-C ends it with exit status 0.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import typer

from layerscope.cli.targets import names_python, spec_file
from layerscope.errors import UsageError, inert

CLEAR = "\x1b[2J\x1b[H"  # erase the terminal, cursor home


def watched_file(target: str | None) -> Path:
    """The spec file a --watch follows: the file SPEC names (a bundled name, the only spec here),
    found once: if it is removed, the runs say so rather than finding another. A Python model is
    refused: its module, once imported, is not imported again."""
    if names_python(target):
        raise UsageError(
            "--watch follows a spec file; a Python model's module is imported once",
            hint="rerun the command after editing the Python file",
        )
    return spec_file(target)


def watch(target: str | None, run_once: Callable[[str], None], changes: Iterable[object] | None = None) -> None:
    """`run_once(spec file)` now and after each change of the file SPEC names, until Ctrl-C (exit 0).
    `changes` (for tests) stands in for watchfiles' stream of changes.

    A save made while a run is under way, before the watcher is set up (the first run takes
    seconds), is caught too: each run notes the file's signature, and every wake-up of the watcher —
    a change, or its timeout each second — compares it."""
    from layerscope.cli.output import guarded

    path = guarded(lambda: watched_file(target), debug=False)
    try:
        seen = _once(run_once, path, clear=False)
        for change in changes if changes is not None else _saves(path.resolve()):
            if change or _signature(path) != seen:
                seen = _once(run_once, path, clear=sys.stdout.isatty())
    except KeyboardInterrupt:
        pass
    raise typer.Exit(0)


def _signature(path: Path) -> tuple[int, ...] | None:
    """What changes when the file is saved (modified time, size, inode); None while it is absent."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _once(run_once: Callable[[str], None], path: Path, clear: bool) -> tuple[int, ...] | None:
    """One run on the file as it is now; its signature before the run."""
    seen = _signature(path)
    if clear:
        sys.stdout.write(CLEAR)
    if seen is None:  # removed (an editor between its delete and its write, or for good): said, not guessed
        from layerscope.cli.output import ending

        typer.echo(
            inert(ending(UsageError(f"{path}: no such file now", hint="watching for it to come back"))[0]), err=True
        )
    else:
        try:
            run_once(str(path))
        except typer.Exit as e:  # its error or failing layer is printed; the next save may mend it
            if e.exit_code == 130:  # Ctrl-C while it ran
                raise KeyboardInterrupt from None
    sys.stdout.flush()
    typer.echo(inert(f"watching {path.name} — Ctrl-C to stop", newlines=False), err=True)
    return seen


def _saves(path: Path) -> Iterable[object]:
    """A change set each time `path` is written, created, replaced or removed (watchfiles), and an
    empty one each second the watcher has seen nothing (to compare the file's signature)."""
    import watchfiles

    def is_the_spec(_: object, changed: str) -> bool:
        return Path(changed).resolve() == path

    return watchfiles.watch(
        path.parent, watch_filter=is_the_spec, recursive=False, yield_on_timeout=True, rust_timeout=1000
    )
