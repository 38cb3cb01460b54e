"""The budgets that bound what an untrusted spec or command line can make layerscope do.

Each is checked before the work it bounds, and each has a default and an environment variable
that changes it (a whole number). The error a budget raises says which one and how to raise it.
docs/security.md lists them with the tests that hold each one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from layerscope.errors import Source, SpecError, UsageError


@dataclass(frozen=True)
class Limit:
    """One budget: its environment variable, default and what it counts."""

    variable: str
    default: int
    unit: str  # what the number counts, for messages: "bytes", "layers", …

    @property
    def value(self) -> int:
        """The budget in force: the environment variable's whole number, else the default."""
        text = os.environ.get(self.variable)
        if text is None:
            return self.default
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            value = -1
        if value < 1:
            raise UsageError(f"{self.variable}={text!r} is not a positive whole number", hint=f"default {self.default}")
        return value

    def hint(self) -> str:
        """How to allow more."""
        return f"the limit is {self.value:,} {self.unit}; set {self.variable} to change it"

    def error(self, message: str, source: Source | None = None) -> SpecError:
        """The error for passing this budget, at `source` when the spec is where it was passed."""
        return SpecError(message, source=source, hint=self.hint())

    def check(self, amount: int, message: str, source: Source | None = None) -> None:
        """Raise `error(message)` when `amount` is over the budget."""
        if amount > self.value:
            raise self.error(message, source)


SPEC_BYTES = Limit("LAYERSCOPE_MAX_SPEC_BYTES", 1 << 20, "bytes")  # a hand-written spec is a few KiB
YAML_DEPTH = Limit("LAYERSCOPE_MAX_YAML_DEPTH", 100, "levels")  # mappings and lists inside each other
LAYERS = Limit("LAYERSCOPE_MAX_LAYERS", 20_000, "layers")  # after blocks and repeats expand; LLaMA-2 70B has 1,300
NESTING = Limit("LAYERSCOPE_MAX_NESTING", 32, "levels")  # containers (Sequential, blocks, repeats) inside each other
STRING = Limit("LAYERSCOPE_MAX_STRING", 4096, "characters")  # any string an expression makes
VAR_DEPTH = Limit("LAYERSCOPE_MAX_VAR_DEPTH", 32, "levels")  # vars defined through other vars
INPUT_ELEMENTS = Limit("LAYERSCOPE_MAX_INPUT_ELEMENTS", 1 << 32, "elements")  # any one input tensor, any device
CPU_BYTES = Limit("LAYERSCOPE_MAX_CPU_BYTES", 8 << 30, "bytes")  # weights and tensors of a run on the CPU
EXPORT_BYTES = Limit("LAYERSCOPE_MAX_EXPORT_BYTES", 8 << 20, "bytes")  # an exported Python file
CHECKPOINT_HEADER = Limit("LAYERSCOPE_MAX_CHECKPOINT_HEADER", 100 << 20, "bytes")  # as safetensors' own cap


def check_cpu_bytes(nbytes: int) -> None:
    """Refuse to hold more than CPU_BYTES on a CPU asked for by name (nothing starts again on meta there)."""
    cap = CPU_BYTES.value
    if nbytes > cap:
        raise UsageError(
            f"the model's tensors on the CPU would pass {cap / 2**30:.3g} GiB",
            hint=f"use --device meta, where nothing is allocated; or set {CPU_BYTES.variable} to allow more",
        )
