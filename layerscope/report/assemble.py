"""A Trace (what the run observed) → a Report: totals, memory, notes and, on failure, the diagnosis."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from layerscope._torch_compat import module_type_name
from layerscope.report import diagnose, fixes, receptive
from layerscope.report.model import Note, Report
from layerscope.run.tensors import records_bytes
from layerscope.run.trace import Trace, nbytes, shapes_of, trace


def report(
    run: Trace,
    *,
    name: str | None = None,
    probe: diagnose.Probe | None = None,
    search: bool = True,
    respec: diagnose.Respec | None = None,
) -> Report:
    """The report of `run`; on failure the diagnosis tries other inputs with `probe` (default:
    diagnose.module_probe, the model on stand-in weights) and other values of a spec's vars with
    `respec` (builder.var_probe), unless `search` is off."""
    counted = [p for p in run.params if p.counted]
    receptive.annotate(run.model, run.records, run.joins)
    failure = None
    if run.failed is not None:
        failed = run.failed
        where = {"called_at": failed.called_at, "raised_at": failed.raised_at, "traceback": failed.traceback}
        failure = diagnose.failure(
            run.model,
            run.inputs,
            run.records,
            failed.record,
            failed.module,
            failed.args,
            failed.error,
            probe,
            search,
            run.kwargs,
            where,
            respec,
        )
    return Report(
        model=name or module_type_name(run.model),
        input_shapes=shapes_of(run.all_inputs),
        output_shapes=shapes_of(run.output),
        layers=run.records,
        params=run.params,
        total_params=sum(p.numel for p in counted),
        trainable_params=sum(p.numel for p in counted if p.trainable),
        param_bytes=records_bytes(counted),
        buffers=run.buffers,
        buffer_bytes=records_bytes(b for b in run.buffers if b.counted),
        input_bytes=nbytes(run.all_inputs),
        # the outputs of layers, not of function calls: the same figure for a model in Python and in YAML
        activation_bytes=sum(r.output_bytes for r in run.records if r.is_leaf and r.completed and not r.functional),
        total_flops=run.flops,
        device=run.device,
        failure=failure,
        notes=[*run.notes, *fixes.merged_batch_notes(run.records)] if failure is None else run.notes,
        ran=run.ran,
        joins=run.joins,
    )


def run_and_report(
    model: nn.Module,
    inputs: Sequence[Any],
    *,
    name: str | None = None,
    sources: Mapping[str, Any] | None = None,
    probe: diagnose.Probe | None = None,
    search: bool = True,
    weights: Mapping[str, Tensor] | None = None,
    respec: diagnose.Respec | None = None,
) -> Report:
    """Trace `model(*inputs)` (run.trace) and report on it (`report`), in one call."""
    traced = trace(model, inputs, sources=sources, weights=weights)
    return report(traced, name=name, probe=probe, search=search, respec=respec)


def unbuilt_notes(stopped_at: str | None, skipped: Sequence[str]) -> list[Note]:
    """What the report must say about a spec that could not be built to the end."""
    if not skipped or stopped_at is None:
        return []
    names = ", ".join(skipped[:4]) + (", ..." if len(skipped) > 4 else "")
    return [Note(stopped_at, f"building stopped here; {len(skipped)} later layer(s) ({names}) are not in the totals")]
