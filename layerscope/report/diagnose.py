"""Report stage, diagnosis: why a layer rejected its input, and what would fit.

Called by report.assemble when the traced forward pass failed. What the layer expected is read off
the layer's own attributes (in_features, in_channels, kernel_size, ...), compared with what it
got; hints are computed, not canned: other inputs are tried with stand-ins for the weights (on
the CPU for small models, on meta above that; see run/devices.py), so the user's model is untouched.
Where the layers before the failing one have known shape rules (fit.py), the sizes that would reach
it in a form it accepts are worked out first and only those are tried. Fixes in the user's own terms
(a merged batch, --dtype, --set) are fixes.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from layerscope.report import fit
from layerscope.report.explain import Mismatch, explain
from layerscope.report.fixes import Respec, dtype_hints, merged_batch, var_hints
from layerscope.report.model import ChainStep, Failure, LayerRecord
from layerscope.run import devices
from layerscope.run.shadow import real_tensors, shadow
from layerscope.run.trace import moved, nbytes, quiet_eval
from layerscope.spec.shapes import format_shape, format_shapes

MAX_PROBES = 64  # candidate inputs tried per failure: what bounds the search, so hints are repeatable
MIN_PROBES = 8
PROBE_CALLS = 50_000  # module calls all probes together may run: fewer probes for a deep model, never a clock
MAX_FITS = 3

# probe(first input's shape, failing layer's name) → (the whole model ran, that layer finished)
Probe = Callable[[list[int], str], tuple[bool, bool]]


def failure(
    model: nn.Module,
    inputs: Sequence[Any],
    records: list[LayerRecord],
    where: LayerRecord,
    module: nn.Module | None,
    args: tuple[Any, ...],
    error: BaseException,
    probe: Probe | None = None,
    search: bool = True,
    kwargs: Mapping[str, Any] | None = None,
    where_in_python: Mapping[str, str | None] | None = None,
    respec: Respec | None = None,
) -> Failure:
    """The full account of a failed forward pass at `where` (the innermost call still open).

    `probe` tries other input shapes (default: module_probe, `model` on stand-in weights); with
    `search` off, only the hints read off the layer itself are given. `respec` (a spec's) finds the
    vars that set the size the layer expects, for a `--set` hint.
    """
    where_in_python = dict(where_in_python or {})
    text = str(error).strip()
    torch_message = text.splitlines()[0] if text else type(error).__name__
    if model_bug(error):
        return Failure(
            layer=where.name,
            type=where.type,
            source=where.source,
            got=where.input_shapes,
            expected=None,
            message=torch_message,
            error=torch_message,
            chain=chain_to(records, where.name),
            error_type=type(error).__name__,
            kind="bug",
            **where_in_python,
        )
    mismatch = explain(module, args) if module is not None else None
    merged = merged_batch(records, where, mismatch, inputs) if mismatch else None
    if merged is not None:
        message, hints = merged
    elif mismatch is not None:
        message = mismatch.message
        x = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
        solver = (
            _Solver(fit.chain(model, records, where, list(x.shape)), module, mismatch, args) if x is not None else None
        )
        budget = probe_budget(len(records))
        hints = _hints(probe or module_probe(model, inputs, kwargs), inputs, where, mismatch, search, budget, solver)
        if search and respec is not None:
            hints[:0] = var_hints(respec, mismatch)
    else:
        message, hints = torch_message, []
    return Failure(
        layer=where.name,
        type=where.type,
        source=where.source,
        got=where.input_shapes,
        expected=mismatch.expected if mismatch else None,
        message=message,
        hints=hints,
        error=torch_message,
        chain=chain_to(records, where.name),
        error_type=type(error).__name__,
        **where_in_python,
    )


_INPUT_WORDS = ("argument", "tensor", "Tensor", "dtype", "size", "shape", "dim")


def model_bug(error: BaseException) -> bool:
    """True for an error in the model's own code rather than about its input: a missing name,
    attribute or key, a failed import, endless recursion, a module without `forward`, an operand
    Python cannot add, or another TypeError that speaks of no argument, tensor, shape or dtype
    (`forward() missing 1 required positional argument` is about the input)."""
    text = str(error)
    if isinstance(error, (NameError, ImportError, SyntaxError, KeyError, RecursionError)):
        return True  # UnboundLocalError is a NameError
    if isinstance(error, NotImplementedError) and 'missing the required "forward" function' in text:
        return True
    if isinstance(error, AttributeError):
        return "'NoneType' object" not in text  # an input left out (mask=None) reads as that
    if isinstance(error, TypeError) and "unsupported operand type(s)" in text:
        return "'NoneType'" not in text
    return isinstance(error, TypeError) and not any(word in text for word in _INPUT_WORDS)


def chain_to(records: list[LayerRecord], failing: str) -> list[ChainStep]:
    """The shapes that led to `failing`: the completed siblings of it and of its ancestors."""
    parts = failing.split(".") if failing else []
    ancestors = {".".join(parts[:i]) for i in range(len(parts))}
    steps = []
    for record in records:
        parent = record.name.rpartition(".")[0]
        if record.completed and record.depth > 0 and parent in ancestors and record.name not in ancestors:
            steps.append(ChainStep(record.name, record.output_shapes))
    return steps


def probe_budget(calls: int) -> int:
    """How many candidate inputs to try for a model whose failed run made `calls` module calls: a
    count, not a time, so the same command prints the same hints on any machine under any load."""
    return max(MIN_PROBES, min(MAX_PROBES, PROBE_CALLS // max(calls, 1)))


def _hints(
    probe: Probe,
    inputs: Sequence[Any],
    where: LayerRecord,
    mismatch: Mismatch,
    search: bool,
    budget: int,
    solver: _Solver | None = None,
) -> list[str]:
    hints = []
    if mismatch.arg and mismatch.fits_input is not None:
        infer = (
            " (or leave it out: layerscope infers it)"
            if where.source and mismatch.kind in ("features", "channels")
            else ""
        )
        if where.source:  # a spec's layer: in the spec's terms
            hints.append(f"set {mismatch.arg}: {mismatch.fits_input} to accept this input{infer}")
        else:  # a Python module: in its constructor's
            hints.append(f"{where.type}({mismatch.arg}={mismatch.fits_input}, …) would accept this input")
    if mismatch.kind == "ids" and where.source:
        hints.append(f"or keep the ids below {mismatch.wanted}: input range [0, {mismatch.wanted}] in the spec")
    elif mismatch.kind == "ids":
        hints.append(f"or keep the ids (or positions) below {mismatch.wanted}")
    if mismatch.kind == "dtype" and mismatch.dtypes:
        hints.extend(dtype_hints(where, *mismatch.dtypes))
    if (
        search
        and mismatch.kind in ("features", "channels", "spatial", "merge")
        and inputs
        and isinstance(inputs[0], Tensor)
        and inputs[0].dim() > 0  # a 0-d input has no size to vary
    ):
        hints.extend(_search(probe, inputs[0], where.name, mismatch, budget, solver))
    return hints


class _Solver:
    """The sizes of the first input whose shape reaches the failing layer in a form it accepts, worked out
    by fit.py's shape rules from the layers before it (no run); None from `sizes` when a rule is unknown."""

    def __init__(self, rules: list[fit.Rule] | None, module: nn.Module | None, mismatch: Mismatch, args: Any):
        # one tensor in, a size or window to meet: what the rules can answer (not a merge of several inputs)
        single = mismatch.kind in ("features", "spatial") and sum(isinstance(a, Tensor) for a in args) == 1
        self.rules = rules if single else None
        self.module = module
        self.dtype = next((a.dtype for a in args if isinstance(a, Tensor)), torch.float32)
        # a last-dim size (in_features, input_size, …) is compared at once; other needs are asked of explain
        self.last_dim = mismatch.wanted if mismatch.kind == "features" and mismatch.arg else None

    def sizes(self, x: Tensor, vary: list[int]) -> list[int] | None:
        if self.rules is None or self.module is None:
            return None
        accepted = []
        try:
            for size in range(1, fit.LARGEST + 1):
                shape = fit.reaching(self.rules, [size if i in vary else s for i, s in enumerate(x.shape)])
                if shape is not None and self._accepts(shape, self.dtype):
                    accepted.append(size)
        except fit.Unknown:
            return None
        return accepted

    def _accepts(self, shape: list[int], dtype: torch.dtype) -> bool:
        if self.last_dim is not None and (not shape or shape[-1] != self.last_dim):
            return False
        return explain(self.module, (torch.empty(shape, dtype=dtype, device="meta"),)) is None  # type: ignore[arg-type]


def _search(
    probe: Probe, x: Tensor, layer: str, mismatch: Mismatch, budget: int, solver: _Solver | None = None
) -> list[str]:
    """Other shapes for the first input: worked out where the layers' rules are known (then only
    those are run, to check the layers after `layer`), else at most `budget` of them tried."""
    shape = list(x.shape)
    if mismatch.kind == "channels":
        if x.dim() < 3 or mismatch.wanted is None:
            return []
        candidate = [shape[0], mismatch.wanted, *shape[2:]]
        return (
            [f"an input with {mismatch.wanted} channels fits: {format_shape(candidate)}"]
            if probe(candidate, layer)[0]
            else []
        )
    vary = list(range(2, x.dim())) if x.dim() >= 3 else [x.dim() - 1]
    pattern = "x".join("S" if i in vary else str(s) for i, s in enumerate(shape))
    accepted = solver.sizes(x, vary) if solver is not None else None
    if accepted is not None:
        return _computed(probe, shape, vary, pattern, layer, mismatch, accepted, budget)
    sizes = _candidate_sizes(mismatch, max(shape[d] for d in vary), len(vary))[:budget]
    fits, through = _try(probe, shape, vary, sizes, layer)
    hints = []
    if mismatch.kind == "spatial" and through is not None:
        hints.append(
            f"the smallest input of the form {pattern} that gets through this layer is {format_shape(through)}"
        )
    if fits:
        hints.append(_fitting(fits))
    else:
        hints.append(f"no input of the form {pattern} with {_tried(sizes)} fits the model")
    return hints


def _try(
    probe: Probe, shape: list[int], vary: list[int], sizes: list[int], layer: str
) -> tuple[list[list[int]], list[int] | None]:
    """Run `sizes` in turn until MAX_FITS fit the whole model: those that fit, and the smallest that got
    through `layer`."""
    fits: list[list[int]] = []
    through: list[int] | None = None
    for size in sizes:
        if len(fits) >= MAX_FITS:
            break
        candidate = [size if i in vary else s for i, s in enumerate(shape)]
        whole, reached = probe(candidate, layer)
        if reached and (through is None or size < through[vary[0]]):
            through = candidate
        if whole:
            fits.append(candidate)
    return sorted(fits), through


def _fitting(fits: list[list[int]]) -> str:
    return (
        f"inputs that fit the model: {format_shapes(fits)}"
        if len(fits) > 1
        else f"an input that fits the model: {format_shape(fits[0])}"
    )


def _computed(
    probe: Probe,
    shape: list[int],
    vary: list[int],
    pattern: str,
    layer: str,
    mismatch: Mismatch,
    accepted: list[int],
    budget: int,
) -> list[str]:
    """Hints from the sizes S ≤ fit.LARGEST whose input reaches `layer` in a form it accepts (`accepted`,
    worked out): only those are run, smallest first, to see whether the layers after it take them too."""
    if not accepted:
        return [
            f"no input of the form {pattern} with S ≤ {fit.LARGEST} gives {layer} what it expects"
            f" ({mismatch.expected}), worked out from the sizes of the layers before it"
        ]
    hints = []
    if mismatch.kind == "spatial":
        smallest = [accepted[0] if i in vary else s for i, s in enumerate(shape)]
        hints.append(
            f"the smallest input of the form {pattern} that gets through this layer is {format_shape(smallest)}"
        )
    run = accepted[:budget]
    fits, _ = _try(probe, shape, vary, run, layer)
    if fits:
        return [*hints, _fitting(fits)]
    if len(run) == len(accepted):
        return [
            *hints,
            f"no input of the form {pattern} with S ≤ {fit.LARGEST} fits the model: {layer} takes only"
            f" {_tried(accepted)}, and the model fails after it on each",
        ]
    return [
        *hints,
        f"no input of the form {pattern} with {_tried(run)} fits the model"
        f" (of S ≤ {fit.LARGEST}, {layer} takes only {_tried(accepted)})",
    ]


def _tried(sizes: list[int]) -> str:
    """The sizes tried, exactly: `S ≤ 64` when they are 1 to 64, else their runs (`S in 1..21, 30`)."""
    if sorted(sizes) == list(range(1, len(sizes) + 1)):
        return f"S ≤ {len(sizes)}"
    runs: list[list[int]] = []
    for s in sorted(sizes):
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return "S in " + ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in runs)


def _candidate_sizes(mismatch: Mismatch, size: int, spatial_dims: int) -> list[int]:
    """Sizes to try for the varied dims, most promising first, at most MAX_PROBES of them.

    A feature count after flatten grows like S**spatial_dims, so the size that turns the count
    the layer got into the one it wants is estimated first, with its neighbours.
    """
    first: list[int] = []
    if mismatch.kind == "features" and mismatch.wanted and mismatch.fits_input and mismatch.fits_input > 0:
        estimate = round(size * (mismatch.wanted / mismatch.fits_input) ** (1 / spatial_dims))
        first = list(range(max(1, estimate - 8), estimate + 9))
    top = min(max(4 * size, 64), 1024)
    return (first + [s for s in range(1, top + 1) if s not in first])[:MAX_PROBES]


def module_probe(model: nn.Module, inputs: Sequence[Any], kwargs: Mapping[str, Any] | None = None) -> Probe:
    """A probe for any module: runs a shadow of it (run/shadow.py) on uninitialised float weights,
    on the device run/devices.py picks for their size, with the other inputs as they were; the
    user's module and its weights stay as they are."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(isinstance(t, nn.parameter.UninitializedParameter) for t in tensors):
        return lambda shape, layer: (False, False)  # lazy weights never materialised: nothing to try
    device = torch.device("meta") if not real_tensors(model) else devices.for_bytes(nbytes([*tensors, *inputs]))
    copy = shadow(model, device).module
    if copy is None:
        return lambda shape, layer: (False, False)
    rest = [moved(t, device) for t in inputs[1:]]
    keywords = {k: moved(v, device) for k, v in (kwargs or {}).items()}

    def probe(first_shape: list[int], layer: str) -> tuple[bool, bool]:
        reached = [False]
        module = copy.get_submodule(layer) if layer else copy
        handle = module.register_forward_hook(lambda *_: reached.__setitem__(0, True))
        try:
            first = torch.zeros(first_shape, dtype=inputs[0].dtype, device=device)
            with torch.no_grad(), quiet_eval(copy):
                copy(first, *rest, **keywords)
            return True, True
        except Exception:  # noqa: BLE001 - a candidate that does not fit is the expected outcome
            return False, reached[0]
        finally:
            handle.remove()

    return probe
