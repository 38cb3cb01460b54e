"""One exception hierarchy: every user-facing error knows where it happened and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """A position in a spec file, 1-based like editors show it."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class LayerscopeError(Exception):
    """Base of every error layerscope reports to a user instead of a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, source: Source | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        hint = f" — {self.hint}" if self.hint else ""
        return f"{where}{self.message}{hint}"


class SpecError(LayerscopeError):
    """The spec file is not valid: bad YAML, unknown op, wrong argument, bad reference."""


class UsageError(LayerscopeError):
    """The command line is not valid: missing spec, malformed --input, unknown model."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean X?' hint for a misspelt name, or None when nothing is close."""
    pool = list(candidates)
    by_lower = {c.lower(): c for c in pool}
    if word.lower() in by_lower:
        return f"did you mean {by_lower[word.lower()]!r}?"
    close = difflib.get_close_matches(word, pool, n=3, cutoff=0.6)
    if not close:
        close = [by_lower[c] for c in difflib.get_close_matches(word.lower(), list(by_lower), n=3, cutoff=0.6)]
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"
