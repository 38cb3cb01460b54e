"""One exception hierarchy: every user-facing error knows where it happened and how to fix it."""

from __future__ import annotations

import difflib
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass

# C0 and C1 control characters (ESC among them: terminal escape sequences), DEL, and the Unicode
# marks that reorder or hide text (bidi overrides and isolates, zero-width ones, line separators)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


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


class RejectedInput(LayerscopeError):
    """The model does not accept its input, so what a command needs of it is unknown: a result, exit 1."""

    exit_code = 1


def inert(text: str, newlines: bool = True) -> str:
    """Untrusted text made safe to print: each control character (a terminal escape's ESC among
    them) and each invisible reordering mark shown as its Python escape, `\\x1b`; a lone
    surrogate too. Tabs stay, and newlines unless `newlines` is off."""
    text = _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)
    if not newlines:
        text = text.replace("\n", "\\n")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates, from a YAML "\udc80"


def file_kind(mode: int) -> str:
    """What a file of `st_mode` is, in words: "a directory", "a FIFO (named pipe)", …"""
    return _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")


_FILE_KINDS = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
}


def first_line(text: str) -> str:
    """A multi-line message (torch's C++ errors) as its first non-empty line, marked as cut."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[0] + (" …" if len(lines) > 1 else "")


def close_matches(word: str, candidates: Iterable[str]) -> list[str]:
    """Up to three of `candidates` spelt like `word`: the same name in other case first."""
    pool = list(candidates)
    by_lower = {c.lower(): c for c in pool}
    if word.lower() in by_lower:
        return [by_lower[word.lower()]]
    close = difflib.get_close_matches(word, pool, n=3, cutoff=0.6)
    if not close:
        close = [by_lower[c] for c in difflib.get_close_matches(word.lower(), list(by_lower), n=3, cutoff=0.6)]
    return close


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean X?' hint for a misspelt name, or None when nothing is close."""
    close = close_matches(word, candidates)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"
