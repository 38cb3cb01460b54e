"""Bundled specs: where they live, listing them, and resolving a SPEC argument to a file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from layerscope.errors import UsageError, did_you_mean

SPEC_SUFFIXES = (".yaml", ".yml")
_SPEC_KEY = re.compile(rb"^(layers|blocks)[ \t]*:", re.MULTILINE)  # a spec's own top-level keys
_SNIFF_BYTES = 1 << 20


def looks_like_spec(path: Path) -> bool:
    """Whether a .yaml file here is a layerscope spec (a top-level `layers:` or `blocks:`), not
    .pre-commit-config.yaml or docker-compose.yaml; reads at most 1 MiB of a regular file."""
    try:
        if not path.is_file() or path.suffix not in SPEC_SUFFIXES:
            return False
        with path.open("rb") as f:
            return _SPEC_KEY.search(f.read(_SNIFF_BYTES)) is not None
    except OSError:
        return False


def bundled_dir() -> Path:
    """The folder of bundled specs: inside the installed package, or configs/ of a source checkout."""
    package = Path(__file__).parent.parent
    installed = package / "configs"
    return installed if installed.is_dir() else package.parent / "configs"


@dataclass(frozen=True)
class Bundled:
    """A bundled spec with its one-line description."""

    name: str
    description: str
    path: Path


def bundled_specs() -> list[Bundled]:
    """Every bundled spec, sorted by name; reads only the name/description lines, so no torch."""
    found = []
    for path in sorted(bundled_dir().glob("*.yaml")):
        description = ""
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("description:"):
                description = line.partition(":")[2].strip().strip("\"'")
                break
        found.append(Bundled(path.stem, description, path))
    return found


def resolve_spec(arg: str | None, cwd: Path | None = None) -> Path:
    """The spec file meant by a SPEC argument: a path, a bundled name, or the only spec in `cwd`."""
    return _resolved(arg, cwd or Path.cwd())


def resolve_spec_noting(arg: str | None, cwd: Path | None = None) -> tuple[Path, str | None]:
    """`resolve_spec` for the command line: a file name that is not here and names a bundled spec
    (`lenet.yaml` in any directory) takes the bundled spec, with a note saying so, so the README's
    usage works anywhere. The Python API's `load` does not guess."""
    cwd = cwd or Path.cwd()
    if arg is not None and not Path(arg).exists():
        stand_in = _bundled_stand_in(arg)
        if stand_in is not None:
            note = f"no {arg} here: used the bundled spec {Path(arg).stem} ({stand_in})"
            return stand_in, note
    return _resolved(arg, cwd), None


def _bundled_stand_in(arg: str) -> Path | None:
    """The bundled spec a bare file name `NAME.yaml` (no folder) names, if NAME is bundled."""
    path = Path(arg)
    if path.suffix not in SPEC_SUFFIXES or path.name != arg:
        return None
    return next((b.path for b in bundled_specs() if b.name == path.stem), None)


def _resolved(arg: str | None, cwd: Path) -> Path:
    if arg is None:
        candidates = sorted(p.name for p in cwd.iterdir() if looks_like_spec(p))
        if len(candidates) == 1:
            return cwd / candidates[0]
        if not candidates:
            raise UsageError(
                "no SPEC given and no .yaml spec (a file with layers:) in the current directory",
                hint="name a file, or a bundled spec such as 'lenet' (see `layerscope list`)",
            )
        raise UsageError(
            f"no SPEC given and {len(candidates)} specs here: {', '.join(candidates)}", hint="name the one you mean"
        )
    path = Path(arg)
    names = {b.name: b.path for b in bundled_specs()}
    if path.exists():
        return path  # the loader reports a directory or an unreadable file with its position
    if ".py:" in arg or arg.endswith(".py"):
        raise UsageError(f"{arg}: no such file", hint="a Python model is path/to/file.py:ClassOrFactory")
    if path.suffix in SPEC_SUFFIXES or "/" in arg:
        guess = did_you_mean(path.stem, names) if "/" not in arg else None  # a path is not a misspelt bundled name
        raise UsageError(f"{arg}: no such file", hint=guess or "`layerscope list` shows the bundled specs")
    if arg in names:
        bundled = names[arg]
        return bundled.relative_to(cwd) if bundled.is_relative_to(cwd) else bundled
    raise UsageError(
        f"{arg!r} is neither a file nor a bundled spec", hint=did_you_mean(arg, names) or f"bundled: {', '.join(names)}"
    )
