"""Bundled specs: where they live, listing them, and resolving a SPEC argument to a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from layerscope.errors import UsageError, did_you_mean

SPEC_SUFFIXES = (".yaml", ".yml")


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
    cwd = cwd or Path.cwd()
    if arg is None:
        candidates = sorted(p.name for p in cwd.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
        if len(candidates) == 1:
            return cwd / candidates[0]
        if not candidates:
            raise UsageError(
                "no SPEC given and no .yaml spec in the current directory",
                hint="name a file, or a bundled spec such as 'lenet' (see `layerscope list`)",
            )
        raise UsageError(
            f"no SPEC given and {len(candidates)} specs here: {', '.join(candidates)}", hint="name the one you mean"
        )
    path = Path(arg)
    names = {b.name: b.path for b in bundled_specs()}
    if path.exists():
        return path  # the loader reports a directory or an unreadable file with its position
    if path.suffix in SPEC_SUFFIXES or "/" in arg:
        raise UsageError(
            f"{arg}: no such file", hint=did_you_mean(path.stem, names) or "`layerscope list` shows the bundled specs"
        )
    if arg in names:
        bundled = names[arg]
        return bundled.relative_to(cwd) if bundled.is_relative_to(cwd) else bundled
    raise UsageError(
        f"{arg!r} is neither a file nor a bundled spec", hint=did_you_mean(arg, names) or f"bundled: {', '.join(names)}"
    )
