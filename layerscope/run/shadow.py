"""A user's module is run as a shadow: a structural copy of it whose tensors are chosen for the run.

`copy.deepcopy` with a memo that maps each parameter and buffer to its replacement copies everything
else — submodules, hooks, attributes, caches, LSTM's `_flat_weights` list — so whatever a forward
writes (an anchor cache, an attribute, a submodule made on first call, a parametrization's
result, `train()`'s side effects on `requires_grad`) lands on the shadow, and the user's module
keeps its state, its hooks and its modes without anything to restore.

What replaces a tensor:
- a parameter: on a real run a new Parameter over the same storage (exact, nothing copied), the
  op counter guarding that storage: an op about to write it in place (WGAN's clamp_, a running
  average kept in a Parameter) stops the run, which starts again on copies of the weights; on
  meta an uninitialised one, where nothing is allocated;
- a buffer or a tensor held as a plain attribute: its real values — cloned (buffers are small; an index table
  with garbage in it would make the model fail for no fault of the user's), or on meta its shape.
Tied tensors stay tied: one tensor, one replacement.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FunctionType
from typing import Any

import torch
from torch import Tensor, nn

from layerscope.run.meta_rnn import answer_by_shape


@dataclass
class Shadow:
    """The copy to run, and why a copy could not be made (then `module` is None); `shared` names
    the objects deepcopy refused (a lock, a file handle), which the copy holds as the original does."""

    module: nn.Module | None
    problem: str = ""
    shared: tuple[str, ...] = ()


def shadow(model: nn.Module, device: torch.device, *, share_weights: bool = False, by_shape: bool = True) -> Shadow:
    """`model` copied for one run on `device` (see the module's docstring for what each tensor
    becomes); `share_weights`: parameters already on `device` keep their storage (see `weight_storages`);
    `by_shape` off keeps recurrent layers' own forward on meta (a training pass: what autograd saves)."""
    memo: dict[int, object] = {}
    for tensor in [*_tensors(model), *_plain_tensors(model)]:
        if id(tensor) not in memo:
            memo[id(tensor)] = _replacement(tensor, device, share_weights)
    shared: list[str] = []
    try:
        copied = _copied(model, memo, shared)
    except Exception as e:  # noqa: BLE001 - a module deepcopy refuses
        return Shadow(None, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
    if device.type == "meta" and by_shape:
        answer_by_shape(copied)  # recurrent layers: shapes and FLOPs without the step-by-step run
    return Shadow(copied, shared=tuple(dict.fromkeys(shared)))


_ATOMIC = (type(None), bool, int, float, complex, str, bytes, type, torch.dtype, torch.device, FunctionType)
_OWN_COPYING = ("__deepcopy__", "__reduce_ex__", "__reduce__", "__getstate__", "__setstate__", "__copy__")


def _copied(value: Any, memo: dict[int, Any], shared: list[str]) -> Any:
    """copy.deepcopy(value, memo), done directly for what a module tree is made of (modules, their
    dicts, lists, tuples and sets, immutable values, functions): deepcopy's generic reconstruction
    per object was a third of the inspect of a small model. Anything else, and any module class
    with copying of its own, goes through deepcopy itself, with the same memo; an object deepcopy
    refuses (a lock, a file handle) is shared by the copy and named in `shared`."""
    if isinstance(value, _ATOMIC):
        return value
    key = id(value)
    if key in memo:
        return memo[key]
    kind = type(value)
    if kind in (dict, OrderedDict):
        made = memo[key] = kind()
        if not value:  # most of a module's tables (hooks of each kind) are empty
            return made
        for name, item in value.items():
            made[name] = item if isinstance(item, _ATOMIC) else _copied(item, memo, shared)
        return made
    if isinstance(value, nn.Module) and _copied_as_nn_module(kind):
        new = memo[key] = kind.__new__(kind)
        state = new.__dict__
        for name, item in value.__dict__.items():
            state[name] = item if isinstance(item, _ATOMIC) else _copied(item, memo, shared)
        return new
    if kind is list:
        made = memo[key] = []
        made.extend(_copied(item, memo, shared) for item in value)
        return made
    if kind is tuple:
        return tuple(_copied(item, memo, shared) for item in value)
    if kind is set and all(isinstance(item, _ATOMIC) for item in value):
        made = memo[key] = set(value)
        return made
    try:
        return copy.deepcopy(value, memo)
    except Exception:  # a lock, a file handle, a generator: the copy shares it
        if isinstance(value, (nn.Module, Tensor)):
            raise  # never shared: the run would reach the user's own module or tensor
        memo[key] = value
        shared.append(type(value).__name__)
        return value


@functools.cache
def _copied_as_nn_module(kind: type) -> bool:
    """True for a module class that copies, pickles and restores itself as nn.Module does. (The
    convolutions' `__setstate__` only fills in a `padding_mode` that old pickles lack: a copy of
    the attributes needs nothing from it.)"""
    allowed = {"__setstate__": (nn.Module.__setstate__, nn.Conv2d.__setstate__)}
    return all(
        getattr(kind, name, None) in allowed.get(name, (getattr(nn.Module, name, None),)) for name in _OWN_COPYING
    )


def _tensors(model: nn.Module) -> list[Tensor]:
    """Every parameter and buffer of `model`, each once, lazy (uninitialised) parameters left to deepcopy."""
    found = [
        *(p for _, p in model.named_parameters(remove_duplicate=False)),
        *(b for _, b in model.named_buffers(remove_duplicate=False)),
    ]
    return [t for t in found if not isinstance(t, nn.parameter.UninitializedTensorMixin)]


def _plain_tensors(model: nn.Module) -> list[Tensor]:
    """Tensors held as plain attributes (old-style weight_norm's computed `weight`, a cached table):
    treated as buffers, so they run on the same device — and a computed one, which deepcopy refuses
    (not a graph leaf), is copied by value."""
    return [
        value
        for module in model.modules()
        for value in vars(module).values()
        if isinstance(value, Tensor) and not isinstance(value, nn.parameter.UninitializedTensorMixin)
    ]


def _replacement(tensor: Tensor, device: torch.device, share: bool = False) -> Tensor:
    meta = device.type == "meta"
    if isinstance(tensor, nn.Parameter):
        if meta:
            data = torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")
        elif share and tensor.device == device:  # guarded by the run: see weight_storages
            data = tensor.detach()
        else:
            data = tensor.detach().clone().to(device)
        replaced = nn.Parameter(data, requires_grad=tensor.requires_grad)
        replaced.__dict__.update(_attributes(tensor))
        return replaced
    if meta:
        return torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")
    return tensor.detach().clone().to(device)


def _attributes(tensor: Tensor) -> Mapping[str, object]:
    """Attributes a library set on a parameter object (timm's `_no_weight_decay`, HF's flags)."""
    return dict(getattr(tensor, "__dict__", {}))


def stand_ins(model: nn.Module, device: torch.device) -> dict[str, Tensor]:
    """The same replacements by name, for torch.func.functional_call on the user's own module: the
    way to run a module deepcopy refuses (then `restored` undoes what its forward writes)."""
    chosen: dict[int, Tensor] = {}
    named = [*model.named_parameters(), *model.named_buffers()]
    return {name: chosen.setdefault(id(t), _replacement(t, device)) for name, t in named}


@contextlib.contextmanager
def restored(model: nn.Module) -> Iterator[None]:
    """Every module's attributes, the contents of the dicts, lists and sets among them (its
    parameter, buffer and child tables, a cache, a history), and every tensor's `requires_grad`,
    put back as they were when the block ends. Deeper containers are not: the note of an in-place
    run says so."""
    saved = []
    for module in model.modules():
        state = dict(module.__dict__)
        tables = {
            key: copy.copy(value) for key, value in state.items() if type(value) in (dict, OrderedDict, list, set)
        }
        saved.append((module, state, tables))
    grads = [(t, t.requires_grad) for t in [*model.parameters(), *model.buffers()]]
    try:
        yield
    finally:
        for module, state, tables in saved:
            module.__dict__.clear()
            module.__dict__.update(state)
            for key, table in tables.items():
                state[key].clear()
                if isinstance(table, list):
                    state[key].extend(table)
                else:
                    state[key].update(table)
        for t, requires_grad in grads:
            if t.requires_grad != requires_grad:
                t.requires_grad_(requires_grad)


def weight_storages(model: nn.Module) -> frozenset[int]:
    """The storages (by data_ptr) of `model`'s parameters: a run on a shadow sharing them passes
    these to the op counter, which stops any op about to write one (devices.WritesWeights)."""
    found = (
        p for p in model.parameters() if not isinstance(p, nn.parameter.UninitializedTensorMixin) and not p.is_meta
    )
    return frozenset(ptr for p in found if (ptr := p.untyped_storage().data_ptr()))


def real_tensors(model: nn.Module) -> bool:
    """True when every parameter and buffer of `model` holds values (none is on meta or lazy)."""
    found = [*model.parameters(), *model.buffers()]
    return not any(t.is_meta or isinstance(t, nn.parameter.UninitializedTensorMixin) for t in found)
