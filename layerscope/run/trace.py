"""Trace stage: any nn.Module + example inputs → Report, by forward hooks on every submodule."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from layerscope.report import diagnose
from layerscope.report.model import LayerRecord, Note, ParamRecord, Report, Shape
from layerscope.run.counting import OpCounter


def tensors_in(value: Any) -> list[Tensor]:
    """Every tensor in a (nested) value, in order: LSTM's (out, (h, c)) gives three."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in tensors_in(v)]
    return []


def shapes_of(value: Any) -> list[Shape]:
    """The shapes of every tensor in a (nested) value."""
    return [list(t.shape) for t in tensors_in(value)]


def nbytes(value: Any) -> int:
    """Bytes held by every tensor in a (nested) value."""
    return sum(t.numel() * t.element_size() for t in tensors_in(value))


def _count(params: Sequence[nn.Parameter]) -> tuple[int, int]:
    unique = {id(p): p for p in params if not isinstance(p, nn.parameter.UninitializedParameter)}
    total = sum(p.numel() for p in unique.values())
    return total, sum(p.numel() for p in unique.values() if p.requires_grad)


def trace(
    model: nn.Module,
    inputs: Sequence[Any],
    *,
    name: str | None = None,
    sources: Mapping[str, Any] | None = None,
    probe: diagnose.Probe | None = None,
    search: bool = True,
    weights: Mapping[str, Tensor] | None = None,
) -> Report:
    """Run `model(*inputs)` once in eval mode without gradients and record every module call.

    `weights` (devices.stand_in) run the model on other tensors than its own, e.g. on meta.
    On failure the report explains it; `probe` tries other inputs for the hints (default:
    diagnose.module_probe, this model on stand-in weights), unless `search` is off.
    Afterwards the model is as it was: its tensors, each module's mode, its hooks.
    """
    sources = sources or {}
    names: dict[int, list[str]] = {}
    for qualname, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), []).append(qualname)
    calls: dict[int, int] = {}
    first_call: dict[int, str] = {}
    counts: dict[int, tuple[int, int]] = {}
    records: list[LayerRecord] = []
    # calls still open, innermost last: record, module, args, the FLOP total when the call began
    stack: list[tuple[LayerRecord, nn.Module, tuple[Any, ...], int]] = []
    raised_in: dict[int, str] = {}  # index into `caught` → the innermost layer open when it was raised
    counter = OpCounter()

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        key = id(module)
        n = calls.get(key, 0)
        calls[key] = n + 1
        # a module registered under several names (a spec's `use:`) takes them in turn, call by call
        options = names.get(key, ["?"])
        qualname = options[n % len(options)]
        if key not in counts:
            counts[key] = _count(list(module.parameters()))
        total, trainable = counts[key]
        record = LayerRecord(
            name=qualname,
            type=module._get_name(),
            depth=0 if qualname == "" else qualname.count(".") + 1,
            input_shapes=shapes_of(args) + shapes_of(kwargs),
            num_params=total,
            trainable_params=trainable,
            is_leaf=not any(True for _ in module.children()),
            shared_with=first_call.get(key),
            source=str(sources[qualname]) if qualname in sources else None,
        )
        first_call.setdefault(key, qualname)
        records.append(record)
        stack.append((record, module, args, counter.flops))

    def post_hook(module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        record, _, _, flops_before = stack.pop()
        record.output_shapes = shapes_of(output)
        record.output_bytes = nbytes(output)
        record.flops = counter.flops - flops_before
        record.completed = True
        for i in range(len(raised_in), len(caught)):
            raised_in[i] = record.name  # inner calls finish first, so they claim first

    handles = []
    for module in {id(m): m for _, m in model.named_modules()}.values():
        handles.append(module.register_forward_pre_hook(pre_hook, with_kwargs=True))
        handles.append(module.register_forward_hook(post_hook, with_kwargs=True))
    modes = [(module, module.training) for module in model.modules()]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    mkldnn = torch.backends.mkldnn.enabled
    failure = None
    error: Exception | None = None
    output: Any = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.eval()
            # the fused attention fast path skips the sublayers' forward, hiding their rows
            torch.backends.mha.set_fastpath_enabled(False)
            # oneDNN runs an LSTM as one kernel the FLOP counter cannot see into; without it the
            # CPU takes the same matmuls as the meta device, so both report the same FLOPs
            torch.backends.mkldnn.enabled = False
            with torch.no_grad(), counter:
                output = model(*inputs) if weights is None else functional_call(model, dict(weights), tuple(inputs))
        except Exception as e:  # noqa: BLE001 - a model that rejects its input is a result, not a crash
            error = e
        finally:
            for module, training in modes:
                module.training = training
            torch.backends.mha.set_fastpath_enabled(fastpath)
            torch.backends.mkldnn.enabled = mkldnn
            for handle in handles:
                handle.remove()
    if error is not None:
        where, module, args = (
            stack[-1][:3]
            if stack
            else (LayerRecord("", model._get_name(), 0, shapes_of(list(inputs))), None, tuple(inputs))
        )
        failure = diagnose.failure(model, inputs, records, where, module, args, error, probe, search)
    notes = _notes(caught, raised_in, stack[-1][0].name if stack else "")
    params = _params(model)
    counted = [p for p in params if p.counted]
    first = next(iter([*tensors_in(list(inputs)), *(weights or {}).values(), *model.parameters()]), None)
    return Report(
        model=name or model._get_name(),
        input_shapes=shapes_of(list(inputs)),
        output_shapes=shapes_of(output),
        layers=records,
        params=params,
        total_params=sum(p.numel for p in counted),
        trainable_params=sum(p.numel for p in counted if p.trainable),
        param_bytes=sum(p.numel * _itemsize(p.dtype) for p in counted),
        input_bytes=nbytes(list(inputs)),
        activation_bytes=sum(r.output_bytes for r in records if r.is_leaf and r.completed),
        total_flops=counter.flops,
        device=str(first.device) if first is not None else "cpu",
        failure=failure,
        notes=notes,
    )


def _notes(caught: list[warnings.WarningMessage], raised_in: dict[int, str], fallback: str) -> list[Note]:
    """Warnings as notes, each with the layer it was raised in (`fallback`: the one that failed)."""
    notes: list[Note] = []
    for i, w in enumerate(caught):
        note = Note(layer=raised_in.get(i, fallback), message=str(w.message).strip().splitlines()[0])
        if note not in notes:
            notes.append(note)
    return notes


def param_names(model: nn.Module) -> dict[int, list[str]]:
    """Every name of each parameter tensor, by the tensor's id, in the model's order: a tied or
    shared parameter has several."""
    by_tensor: dict[int, list[str]] = {}
    for qualname, p in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(p), []).append(qualname)
    return by_tensor


def _params(model: nn.Module) -> list[ParamRecord]:
    by_tensor = param_names(model)
    records = []
    for qualname, p in model.named_parameters(remove_duplicate=False):
        lazy = isinstance(p, nn.parameter.UninitializedParameter)
        aliases = by_tensor[id(p)]
        records.append(
            ParamRecord(
                name=qualname,
                shape=[] if lazy else list(p.shape),
                numel=0 if lazy else p.numel(),
                dtype=str(p.dtype).removeprefix("torch."),
                trainable=p.requires_grad,
                shared_with=[a for a in aliases if a != qualname],
                counted=aliases[0] == qualname,
            )
        )
    return records


def _itemsize(dtype: str) -> int:
    return int(getattr(torch, dtype).itemsize)
