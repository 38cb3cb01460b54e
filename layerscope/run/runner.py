"""Where and on what a user's module runs, and what happens when the meta device cannot run it.

- A module that fits run/devices.py's CPU budgets runs on its own weights on the CPU (a shadow
  sharing their storage, run/shadow.py), under no_grad: exact, nothing copied but the buffers.
  The work budget is checked before each leaf runs; past it, the run starts again on meta.
- A bigger one runs on the meta device, where nothing is allocated or computed.
- When the meta run fails — an op with a data-dependent output (`nonzero`, a boolean mask,
  `.item()`), a missing meta kernel, or a real mismatch — the failure is not the user's until real
  tensors confirm it: the run is repeated on the CPU on the real weights, within the CPU byte budget
  (limits.CPU_BYTES), and a note says which device ran and why. Past that budget the failure is
  reported with a note that it was seen on meta only, and `--device cpu` to confirm.
- A module deepcopy refuses runs in place on stand-ins through functional_call, its attributes
  put back afterwards (shadow.restored), with a note; a TorchScript module takes no hooks: its
  parameters only, with a note.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from layerscope import limits
from layerscope.errors import UsageError
from layerscope.run import devices
from layerscope.run.inputs import Inputs
from layerscope.run.records import Note
from layerscope.run.shadow import real_tensors, restored, shadow, stand_ins, weight_storages
from layerscope.run.trace import Trace, nbytes, trace, untraced

MakeInputs = Callable[[torch.device], Inputs]  # the inputs, made (or moved) onto a device
META = torch.device("meta")
CPU = torch.device("cpu")


def run_module(model: nn.Module, make: MakeInputs, input_bytes: int, device: str = "auto") -> Trace:
    """Trace `model` on inputs from `make`, on `device` (auto, cpu, meta, cuda…), leaving it untouched."""
    if isinstance(model, torch.jit.ScriptModule):  # takes no hooks: no layer can be observed
        why = "a TorchScript module takes no hooks: its parameters are listed; for shapes, inspect the Python module"
        inputs = make(META)
        return untraced(model, [*inputs.args, *inputs.kwargs.values()], why)
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters()):
        # lazy weights take their shapes on the first call: on a copy, on the CPU
        return run_on(model, CPU, make(CPU))
    weights = nbytes([*model.parameters(), *model.buffers()])
    if device != "auto":
        named = devices.named(device)
        if named.type != "meta" and not real_tensors(model):
            raise UsageError(
                f"the model's weights are on meta: they hold no values to run on {named.type}",
                hint="use --device auto or meta, or load its weights first",
            )
        if named.type == "cpu":
            limits.check_cpu_bytes(2 * weights + input_bytes)  # a forward that writes them runs on copies
        ran = run_on(model, named, make(named))
        if named.type == "meta" and ran.failed is not None:
            ran.notes.insert(0, _unconfirmed(ran, "you asked for --device meta"))
        return ran
    if not real_tensors(model):  # its weights are on meta themselves: nowhere else to run
        ran = run_on(model, META, make(META))
        if ran.failed is not None:
            ran.notes.insert(0, _unconfirmed(ran, "the model's own weights are on meta", confirm=False))
        return ran
    if devices.for_bytes(weights + input_bytes).type == "cpu":
        # tried on the CPU, each leaf's work and bytes checked as it runs (devices.WorkBudget):
        # past the budget it starts again on meta. No guess for the whole model first: all its
        # weights at every position overestimates a MobileNet 2,000-fold
        with contextlib.suppress(devices.OverBudget):
            return run_on(model, CPU, make(CPU), budgeted=True)
    on_meta = run_on(model, META, make(META))
    if on_meta.failed is None:
        return on_meta
    return _confirmed(model, make, on_meta, weights + input_bytes)


def run_on(model: nn.Module, device: torch.device, inputs: Inputs, *, budgeted: bool = False) -> Trace:
    """One traced run of a shadow of `model` on `device`, on its own weight storage where they are
    already there; if the forward is about to write them in place, again on copies. `budgeted`
    stops it (OverBudget) past the CPU budgets."""
    try:
        return _run_shadow(model, device, inputs, budgeted, share_weights=device.type != "meta")
    except devices.WritesWeights:
        return _run_shadow(model, device, inputs, budgeted, share_weights=False)


def _run_shadow(model: nn.Module, device: torch.device, inputs: Inputs, budgeted: bool, share_weights: bool) -> Trace:
    copy = shadow(model, device, share_weights=share_weights)
    in_place = copy.module is None  # a module class that refuses copies: its own, on stand-ins, put back after
    budget = None
    if budgeted:  # its tensors, then each layer's output, count against the CPU byte budget
        budget = devices.WorkBudget(held_bytes=nbytes([*model.parameters(), *model.buffers()]) + inputs.nbytes)
    with restored(model) if in_place else contextlib.nullcontext():
        ran = trace(
            model if in_place else copy.module,
            inputs.args,
            kwargs=inputs.kwargs,
            weights=stand_ins(model, device) if in_place else None,
            before_leaf=budget.charge if budget else None,
            after_leaf=budget.hold if budget else None,
            guarded=weight_storages(model) if share_weights and not in_place else frozenset(),
        )
    if in_place:
        why = f"the model could not be copied ({copy.problem}): it ran in place, its attributes and their"
        ran.notes.insert(0, Note("", why + " containers' contents put back after (deeper state it wrote is not)"))
    if copy.shared:
        kinds = ", ".join(copy.shared)
        ran.notes.insert(0, Note("", f"the copy the model ran as shares what Python cannot copy ({kinds}) with it"))
    return ran


def _confirmed(model: nn.Module, make: MakeInputs, on_meta: Trace, size: int) -> Trace:
    """A failure seen on meta, repeated on real tensors on the CPU where the budget allows."""
    assert on_meta.failed is not None
    if 2 * size > limits.CPU_BYTES.value:  # its weights, and the copy it runs as
        on_meta.notes.insert(0, _unconfirmed(on_meta, f"its tensors ({size / 2**30:.3g} GiB) pass the CPU budget"))
        return on_meta
    on_cpu = run_on(model, CPU, make(CPU))
    if on_cpu.failed is None:
        failed = on_meta.failed
        where = f" in {failed.record.name}" if failed.record.name else ""
        on_cpu.notes.insert(
            0,
            Note("", f"ran on the CPU: the meta device could not run it ({_first_line(failed.error)}{where})"),
        )
    return on_cpu


def _unconfirmed(ran: Trace, why: str, confirm: bool = True) -> Note:
    assert ran.failed is not None
    then = "; --device cpu runs it on real tensors" if confirm else "; load its weights to run it on real tensors"
    return Note(
        ran.failed.record.name,
        f"seen on the meta device only ({why}): meta cannot run every op, so this may be layerscope's"
        f" limit, not the model's{then}",
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
