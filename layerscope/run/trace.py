"""Run stage: any nn.Module + example inputs → a Trace, by forward hooks on every submodule.

One forward pass in eval mode without gradients; each module call becomes a LayerRecord (shapes,
parameters, FLOPs from counting.OpCounter), each warning a Note. A failure is kept as it happened
(the exception, and the innermost call still open with its module and arguments) for the report
stage to explain. Afterwards the model is as it was: its tensors, each module's mode, its hooks.
"""

from __future__ import annotations

import linecache
import os
import random
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from traceback import format_exception, walk_tb
from types import FrameType
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from layerscope._torch_compat import module_type_name
from layerscope.run.counting import OpCounter
from layerscope.run.devices import Restart
from layerscope.run.flow import Flow
from layerscope.run.records import Join, LayerRecord, Note, ParamRecord, Shape
from layerscope.run.tensors import buffer_records, count_params, param_records, subtree_counts, tensors_in


def mapped(value: Any, change: Callable[[Any], Any], leaf: Callable[[Any], bool] | None = None) -> Any:
    """`value` with every tensor in it (through lists, tuples and dicts) replaced by `change(tensor)`;
    `leaf` picks other values to change instead of tensors (numpy arrays)."""
    if (leaf or _is_tensor)(value):
        return change(value)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(mapped(v, change, leaf) for v in value)
    if isinstance(value, tuple):  # a named tuple
        return type(value)(*(mapped(v, change, leaf) for v in value))
    if isinstance(value, Mapping):
        return {k: mapped(v, change, leaf) for k, v in value.items()}
    return value


def _is_tensor(value: Any) -> bool:
    return isinstance(value, Tensor)


def moved(value: Any, device: torch.device) -> Any:
    """`value` with its tensors on `device`; a meta tensor (no values) becomes zeros there."""

    def move(t: Tensor) -> Tensor:
        if t.device == device:
            return t
        return torch.zeros(t.shape, dtype=t.dtype, device=device) if t.is_meta else t.to(device)

    return mapped(value, move)


def shapes_of(value: Any) -> list[Shape]:
    """The shapes of every tensor in a (nested) value."""
    return [list(t.shape) for t in tensors_in(value)]


def nbytes(value: Any) -> int:
    """Bytes held by every tensor in a (nested) value."""
    return sum(t.numel() * t.element_size() for t in tensors_in(value))


@dataclass
class Failed:
    """Where a forward pass stopped: the exception, and the innermost call still open."""

    error: BaseException
    record: LayerRecord  # the call that was running (the model's own when no submodule was)
    module: nn.Module | None  # its module, None when the model failed before any call
    args: tuple[Any, ...]  # what that module was called with
    called_at: str | None = None  # file:line (function): source of the call of that module in Python code
    raised_at: str | None = None  # the same for the innermost Python frame outside torch that was running
    traceback: str = ""  # the whole traceback, for --debug


@dataclass
class Trace:
    """What one forward pass showed: every module call in order, every parameter, the warnings."""

    model: nn.Module  # the module that ran: for a user's module, its shadow (run/shadow.py)
    inputs: list[Any]  # the positional arguments of the forward
    records: list[LayerRecord]
    params: list[ParamRecord]
    notes: list[Note]
    output: Any
    flops: int | None  # of the whole pass, by torch's FLOP formulas; None when an operator could not be counted
    device: str  # where the tensors were: the inputs', else the weights'
    failed: Failed | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)  # its keyword arguments
    ran: bool = True  # False when no forward ran (untraced): no shapes, FLOPs or activations
    buffers: list[ParamRecord] = field(default_factory=list)  # running statistics and the like: no parameters
    joins: list[Join] = field(default_factory=list)  # ops outside layers that combined producers (run/flow.py)

    @property
    def all_inputs(self) -> list[Any]:
        """Positional then keyword arguments, for shapes and bytes."""
        return [*self.inputs, *self.kwargs.values()]


class CallNames:
    """The name of each module call: its qualified name, and a module registered under several names
    (a spec's `use:`) takes them in turn, call by call."""

    def __init__(self, model: nn.Module):
        self.names: dict[int, list[str]] = {}
        for qualname, module in model.named_modules(remove_duplicate=False):
            self.names.setdefault(id(module), []).append(qualname)
        self.calls: dict[int, int] = {}

    def next(self, module: nn.Module) -> tuple[str, int]:
        """This call's name, and how many calls of the module came before it."""
        n = self.calls.get(id(module), 0)
        self.calls[id(module)] = n + 1
        options = self.names.get(id(module), ["?"])
        return options[n % len(options)], n


def hook_modules(model: nn.Module, pre_hook: Callable[..., None], post_hook: Callable[..., None]) -> list[Any]:
    """Forward hooks (with keyword arguments) on every distinct module of `model` but TorchScript ones,
    which take none; the handles remove them."""
    handles = []
    for module in {id(m): m for _, m in model.named_modules()}.values():
        if isinstance(module, torch.jit.ScriptModule):  # takes no hooks: part of its parent's row
            continue
        handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(post_hook, with_kwargs=True))
    return handles


class _Recorder:
    """The forward hooks: a LayerRecord per call, with the FLOPs counted while it was open."""

    def __init__(
        self,
        model: nn.Module,
        sources: Mapping[str, Any],
        counter: OpCounter,
        before_leaf: Callable[[nn.Module, tuple[Any, ...]], None] | None = None,
        after_leaf: Callable[[nn.Module, int], None] | None = None,
    ):
        self.before_leaf = before_leaf
        self.after_leaf = after_leaf
        self.kinds: dict[
            int, tuple[str, bool, bool]
        ] = {}  # by module id: its type's name, is it a leaf, a functional op
        self.names = CallNames(model)
        self.sources = sources
        self.counter = counter
        self.flow = Flow()
        counter.flow = self.flow.op
        self.first_call: dict[int, str] = {}
        self.counts = subtree_counts(model)  # parameters of each module and its children, by module id
        self.records: list[LayerRecord] = []
        # calls still open, innermost last: record, module, args, FLOPs counted and ops not counted when it began
        self.stack: list[tuple[LayerRecord, nn.Module, tuple[Any, ...], int, int]] = []
        self.caught: list[warnings.WarningMessage] = []
        self.raised_in: dict[int, str] = {}  # index into `caught` → the innermost layer open when it was raised
        self.uncounted_in: list[str] = []  # per entry of counter.uncounted, the innermost layer open then

    def pre_hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        key = id(module)
        qualname, n = self.names.next(module)
        total, trainable = self.counts.get(key) or count_params(list(module.parameters()))
        kind = self.kinds.get(key)
        if kind is None:
            kind = self.kinds[key] = (
                module_type_name(module),
                not any(True for _ in module.children()),
                bool(getattr(type(module), "functional", False)),  # spec/ops.py's FunctionalOp, duck-typed
            )
        if kind[1] and self.before_leaf is not None:
            self.before_leaf(module, args)  # the CPU work budget: may stop the run before this layer
        record = LayerRecord(
            name=qualname,
            type=kind[0],
            depth=0 if qualname == "" else qualname.count(".") + 1,
            input_shapes=shapes_of(args) + shapes_of(kwargs) if kwargs else shapes_of(args),
            num_params=total,
            trainable_params=trainable,
            is_leaf=kind[1],
            functional=kind[2],
            shared_with=self.first_call.get(key),
            source=self._source(qualname, n),
        )
        self.first_call.setdefault(key, qualname)
        self.flow.entered(record, len(self.records), tensors_in([args, kwargs]) if kwargs else tensors_in(args))
        self.records.append(record)
        self.stack.append((record, module, args, self.counter.flops, len(self.counter.uncounted)))

    def _source(self, qualname: str, call: int) -> str | None:
        """Where the call was written: `name#k` for the k-th call again of a module under one name (a
        spec's `use:`), else where the module was."""
        where = self.sources.get(f"{qualname}#{call}") if call else None
        where = where if where is not None else self.sources.get(qualname)
        return None if where is None else str(where)

    def post_hook(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        record, _, _, flops_before, uncounted_before = self.stack.pop()
        record.output_shapes = shapes_of(output)
        record.output_bytes = nbytes(output)
        # an operator the counter could not count makes this call's FLOPs unknown, not smaller
        unknown = len(self.counter.uncounted) > uncounted_before
        record.flops = None if unknown else self.counter.flops - flops_before
        record.completed = True
        self.flow.left(tensors_in(output))
        for i in range(len(self.raised_in), len(self.caught)):
            self.raised_in[i] = record.name  # inner calls finish first, so they claim first
        self.uncounted_in += [record.name] * (len(self.counter.uncounted) - len(self.uncounted_in))
        if record.is_leaf and self.after_leaf is not None:
            self.after_leaf(module, record.output_bytes)  # the CPU byte budget: may stop the run after this layer

    def notes(self) -> list[Note]:
        """Warnings as notes, each with the layer it was raised in (else the layer that failed), then
        the operators whose FLOPs could not be counted, each with the innermost layer that ran it."""
        fallback = self.stack[-1][0].name if self.stack else ""
        notes: list[Note] = []
        for layer, why in zip(self.uncounted_in, self.counter.uncounted, strict=False):
            note = Note(layer, f"FLOPs not counted: {why}")
            if note not in notes:
                notes.append(note)
        for i, w in enumerate(self.caught):
            note = Note(layer=self.raised_in.get(i, fallback), message=str(w.message).strip().splitlines()[0])
            if note not in notes:
                notes.append(note)
        return notes


def trace(
    model: nn.Module,
    inputs: Sequence[Any],
    *,
    sources: Mapping[str, Any] | None = None,
    weights: Mapping[str, Tensor] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    before_leaf: Callable[[nn.Module, tuple[Any, ...]], None] | None = None,
    after_leaf: Callable[[nn.Module, int], None] | None = None,
    guarded: frozenset[int] = frozenset(),
) -> Trace:
    """Run `model(*inputs, **kwargs)` once in eval mode without gradients and record every module call.

    `sources` maps qualified names to where they were written (a spec's file:line:col), and
    `name#k` to where the k-th call again of the module `name` was (a spec's `use:`);
    `weights` (shadow.stand_ins) run the model on other tensors than its own, e.g. on meta;
    `before_leaf(module, args)` is called before each leaf layer runs and `after_leaf(module,
    output bytes)` after (devices.WorkBudget's charge and hold); an op about to write a storage in
    `guarded` (by data_ptr) raises devices.WritesWeights.
    """
    kwargs = dict(kwargs or {})
    counter = OpCounter(guarded)
    recorder = _Recorder(model, sources or {}, counter, before_leaf, after_leaf)
    handles = hook_modules(model, recorder.pre_hook, recorder.post_hook)
    recorder.flow.start(tensors_in([*inputs, kwargs]))
    output: Any = None
    error: BaseException | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recorder.caught = caught
        try:
            with quiet_eval(model), torch.no_grad(), counter:
                if weights is None:
                    output = model(*inputs, **kwargs)
                else:
                    output = functional_call(model, dict(weights), tuple(inputs), kwargs)
        except (KeyboardInterrupt, SystemExit, Restart):
            raise  # Ctrl-C, the model ending the process, a run to start again: not the model's answer to its input
        except BaseException as e:  # noqa: BLE001 - a model that rejects its input (however) is a result
            error = e
        finally:
            for handle in handles:
                handle.remove()
    first = next(iter([*tensors_in([*inputs, kwargs]), *(weights or {}).values(), *model.parameters()]), None)
    return Trace(
        model=model,
        inputs=list(inputs),
        records=recorder.records,
        params=param_records(model),
        buffers=buffer_records(model),
        notes=recorder.notes(),
        output=output,
        flops=None if counter.uncounted else counter.flops,
        device=str(first.device) if first is not None else "cpu",
        failed=None if error is None else _failed(model, [*inputs, *kwargs.values()], recorder, error),
        kwargs=kwargs,
        joins=recorder.flow.joins,
    )


def untraced(model: nn.Module, inputs: Sequence[Any], why: str) -> Trace:
    """What is known of a model without running it (no input given, or a TorchScript module, which
    takes no hooks): its module tree with parameter counts, its parameters, and a note saying why
    there is nothing more."""
    counts = subtree_counts(model)
    records = []
    for qualname, module in model.named_modules():
        total, trainable = counts[id(module)]
        records.append(
            LayerRecord(
                name=qualname,
                type=module_type_name(module),
                depth=0 if qualname == "" else qualname.count(".") + 1,
                input_shapes=[],
                num_params=total,
                trainable_params=trainable,
                is_leaf=not any(True for _ in module.children()),
                completed=True,
                flops=None,
            )
        )
    return Trace(
        model=model,
        inputs=list(inputs),
        records=records,
        params=param_records(model),
        buffers=buffer_records(model),
        notes=[Note("", why)],
        output=None,
        flops=None,
        device=str(next((t.device for t in tensors_in(list(inputs))), "cpu")),
        ran=False,
    )


class quiet_eval:
    """Eval mode for a run, and torch's flags as the trace needs them; all restored afterwards, the
    random number generators too (torch's CPU one, Python's and numpy's): a forward that draws
    (torch.randn in it, a lazy import that seeds itself) leaves the process's streams as they were.

    The fused attention fast path skips the sublayers' forward, hiding their rows. oneDNN runs an
    LSTM as one kernel the FLOP counter cannot see into; without it the CPU takes the same
    matmuls as the meta device, so both report the same FLOPs. It stays on for models without a
    recurrent layer: their ops reach the counter the same either way, and oneDNN's convolutions
    and pooling are several times faster.
    """

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self) -> None:
        self.modes = [(module, module.training) for module in self.model.modules()]
        self.fastpath = torch.backends.mha.get_fastpath_enabled()
        self.mkldnn = torch.backends.mkldnn.enabled
        self.rng = (torch.random.get_rng_state(), random.getstate(), _numpy_rng())
        self.model.eval()
        torch.backends.mha.set_fastpath_enabled(False)
        if any(isinstance(m, nn.RNNBase) for m, _ in self.modes):  # only there: oneDNN convolutions are fast
            torch.backends.mkldnn.enabled = False

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            if module.training != training:
                module.training = training
        torch.backends.mha.set_fastpath_enabled(self.fastpath)
        torch.backends.mkldnn.enabled = self.mkldnn
        torch_rng, python_rng, numpy_rng = self.rng
        torch.random.set_rng_state(torch_rng)
        random.setstate(python_rng)
        if numpy_rng is not None:
            sys.modules["numpy"].random.set_state(numpy_rng)


def _numpy_rng() -> Any:
    """numpy's global RNG state where numpy is loaded (torch loads it when installed), else None."""
    numpy = sys.modules.get("numpy")
    return numpy.random.get_state() if numpy is not None else None


def _failed(model: nn.Module, inputs: Sequence[Any], recorder: _Recorder, error: BaseException) -> Failed:
    """The failure as it happened: in the innermost open call, else in the model before any call."""
    text = "".join(format_exception(type(error), error, error.__traceback__))
    if recorder.stack:
        record, module, args, _, _ = recorder.stack[-1]
        called, raised = python_frames(error, module)
        return Failed(error, record, module, args, called, raised, text)
    record = LayerRecord("", module_type_name(model), 0, shapes_of(list(inputs)))
    return Failed(error, record, None, tuple(inputs), None, python_frames(error, None)[1], text)


_OURS = tuple(str(Path(m.__file__).parent) + os.sep for m in (torch, sys.modules["layerscope"]) if m.__file__)


def python_frames(error: BaseException, module: nn.Module | None) -> tuple[str | None, str | None]:
    """Where, in the model's Python code (not torch's, not layerscope's), `module` was called, and
    the innermost of its frames that was running when `error` was raised: `file:line in function:
    source line`."""
    called = raised = None
    last_user = None
    for frame, line in walk_tb(error.__traceback__):
        if not frame.f_code.co_filename.startswith(_OURS):
            last_user = _place(frame, line)
            raised = last_user
        elif called is None and module is not None and frame.f_locals.get("self") is module:
            called = last_user  # the last Python frame before torch took the call
    return called, raised


def _place(frame: FrameType, line: int) -> str:
    path = Path(frame.f_code.co_filename)
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    function = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
    source = linecache.getline(str(path), line).strip()
    return f"{shown}:{line} in {function}" + (f": {source}" if source else "")
