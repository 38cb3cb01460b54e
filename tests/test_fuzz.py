"""A fixed slice of the mutation fuzzer (tests/fuzz.py): no mutated spec may raise anything but a user error."""

from __future__ import annotations

from fuzz import fuzz


def test_mutated_specs_never_raise_uncaught_exceptions() -> None:
    bugs = fuzz(count=400, seed=2026)
    assert not bugs, "\n\n".join(f"--input {inputs}\n{text}\n{problem}" for text, inputs, problem in bugs[:3])
