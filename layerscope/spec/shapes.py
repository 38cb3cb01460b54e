"""Shapes and dtypes as users write them: `1x3x32x32`, `5:int64`, `float16`.

One syntax for the command line's --input, the spec's dtype: and every table that prints a
shape, so what layerscope prints can be pasted back. No torch here: the renderers use it too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from layerscope import limits
from layerscope.errors import Source, UsageError, did_you_mean

DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
_DTYPE_ALIASES = {  # torch's own names (torch.half) and the field's shorthands (fp16, bf16)
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "fp32": "float32",
    "fp64": "float64",
    "fp16": "float16",
    "bf16": "bfloat16",
    "f32": "float32",
    "f64": "float64",
    "f16": "float16",
    "i64": "int64",
    "i32": "int32",
}


def canonical_dtype(name: str) -> str | None:
    """A dtype's name as layerscope writes it (`fp16`, `half`, `torch.float16` → `float16`), or None."""
    name = name.strip().lower().removeprefix("torch.")
    name = _DTYPE_ALIASES.get(name, name)
    return name if name in DTYPES else None


INPUT_HINT = "write sizes joined by x, e.g. --input 1x3x32x32 or --input 5:int64"


def dtype_hint(name: str) -> str:
    """Did-you-mean for a dtype, knowing torch's aliases (long is int64)."""
    if name.removeprefix("torch.") in _DTYPE_ALIASES:
        return f"did you mean {_DTYPE_ALIASES[name.removeprefix('torch.')]!r}?"
    return did_you_mean(name.removeprefix("torch."), DTYPES) or f"dtypes: {', '.join(DTYPES)}"


def parse_input(text: str) -> tuple[tuple[int, ...], str | None]:
    """`1x3x32x32` or `5:int64` → (shape, dtype or None)."""
    shape_text, _, dtype = text.partition(":")
    try:
        shape = tuple(int(part) for part in shape_text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--input {text!r}: not a shape", hint=INPUT_HINT) from None
    if any(d <= 0 for d in shape):
        raise UsageError(f"--input {text!r}: every size must be a positive integer", hint=INPUT_HINT)
    if dtype and canonical_dtype(dtype) is None:
        raise UsageError(f"--input {text!r}: unknown dtype {dtype!r}", hint=dtype_hint(dtype))
    dtype = canonical_dtype(dtype) if dtype else dtype
    check_elements(shape, f"--input {text[:40]!r}")
    return shape, dtype or None


def check_elements(shape: Sequence[int], what: str, source: Source | None = None) -> None:
    """Refuse an input of more elements than the budget (which keeps every size within int64 too)."""
    n = math.prod(shape)
    if n > limits.INPUT_ELEMENTS.value:
        raise limits.INPUT_ELEMENTS.error(f"{what} has {n:.3g} elements", source)


def format_shape(shape: Sequence[int]) -> str:
    """A shape as users type it after --input: 1x3x32x32 (a 0-d tensor is 'scalar')."""
    return "x".join(str(d) for d in shape) if shape else "scalar"


def format_shapes(shapes: Sequence[Sequence[int]]) -> str:
    """Several shapes, comma-separated."""
    return ", ".join(format_shape(s) for s in shapes)
