"""The commands: each reads its options, calls the pipeline (cli/targets.py, api.py or a stage), and hands
the result to render/ through cli/output.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from layerscope.cli import targets
from layerscope.cli.main import command as register
from layerscope.cli.options import (
    AllowImportOpt,
    ArgOpt,
    DebugOpt,
    DepthOpt,
    DeviceOpt,
    DtypeOpt,
    ExportOpt,
    Format,
    FormatOpt,
    InputOpt,
    ModelOpt,
    MomentumOpt,
    OptimizerOpt,
    Options,
    RfOpt,
    SeedOpt,
    SetOpt,
    SpecArg,
    Target,
    TrainOpt,
    WatchOpt,
)
from layerscope.cli.output import emit, guarded, writing
from layerscope.errors import LayerscopeError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import RenderableType

    from layerscope.report.model import Report
    from layerscope.report.weights import WeightsCheck


def _run(
    view: Callable[[Report], RenderableType],
    spec: str | None,
    inputs: list[str],
    fmt: Format,
    options: Options,
    debug: bool,
    export: Path | None = None,
) -> None:
    report = guarded(lambda: targets.inspect(targets.load(spec, options), inputs, options), debug)
    from layerscope.render.text import failure_line, to_json

    if debug and report.failure is not None and report.failure.traceback:
        sys.stderr.write(report.failure.traceback)  # the model's own traceback, as Python printed it

    failure = failure_line(report.failure, report.model) if report.failure is not None else None
    notes = [f"note: {n.layer or report.model}: {n.message}" for n in report.notes]
    emit(fmt, lambda: to_json(report), lambda: view(report), failure=failure, export=export, notes=notes)


def _watched(watch: bool, spec: str | None, run_once: Callable[[str | None], None]) -> None:
    """`run_once(spec)`, or with --watch, on the spec's file again after each save (cli/watch.py)."""
    if not watch:
        run_once(spec)
        return
    from layerscope.cli.watch import watch as watching

    watching(spec, run_once)


@register()
def inspect(
    spec: SpecArg = None,
    inputs: InputOpt = None,
    depth: DepthOpt = None,
    train: TrainOpt = False,
    optimizer: OptimizerOpt = None,
    momentum: MomentumOpt = None,
    rf: RfOpt = False,
    fmt: FormatOpt = Format.table,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sets: SetOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    seed: SeedOpt = 0,
    export: ExportOpt = None,
    watch: WatchOpt = False,
    debug: DebugOpt = False,
) -> None:
    """The layer tree: name, type, output shape, parameters, share of the total; totals below."""
    from layerscope.render.views import inspect_view

    options = Options(
        model, device, dtype, tuple(sets or ()), allow_import, tuple(args or ()), seed, (train, optimizer, momentum)
    )
    _watched(
        watch, spec, lambda s: _run(lambda r: inspect_view(r, depth, rf), s, inputs or [], fmt, options, debug, export)
    )


@register()
def shapes(
    spec: SpecArg = None,
    inputs: InputOpt = None,
    depth: DepthOpt = None,
    fmt: FormatOpt = Format.table,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sets: SetOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    seed: SeedOpt = 0,
    export: ExportOpt = None,
    watch: WatchOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Input and output shape of every layer, in the order they run."""
    from layerscope.render.views import shapes_view

    options = Options(model, device, dtype, tuple(sets or ()), allow_import, tuple(args or ()), seed)
    _watched(watch, spec, lambda s: _run(lambda r: shapes_view(r, depth), s, inputs or [], fmt, options, debug, export))


@register()
def params(
    spec: SpecArg = None,
    inputs: InputOpt = None,
    fmt: FormatOpt = Format.table,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sets: SetOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    seed: SeedOpt = 0,
    export: ExportOpt = None,
    watch: WatchOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Every parameter: qualified name, shape, count, dtype, trainable, and what it is tied to."""
    from layerscope.render.views import params_view

    options = Options(model, device, dtype, tuple(sets or ()), allow_import, tuple(args or ()), seed)
    _watched(watch, spec, lambda s: _run(params_view, s, inputs or [], fmt, options, debug, export))


@register()
def check(
    spec: SpecArg = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="SHAPE",
            help="A candidate input such as 1x3x32x32 (:dtype allowed); several inputs of one model joined by commas. Repeat for more candidates. Default: the spec's input:.",
        ),
    ] = None,
    fmt: FormatOpt = Format.table,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    sets: SetOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    export: ExportOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Which of several inputs the model accepts; exit status 1 when any does not fit."""
    from layerscope.render.text import check_json, failure_line
    from layerscope.render.views import check_view
    from layerscope.report.model import CheckResult
    from layerscope.spec.shapes import format_shapes

    options = Options(model, device, dtype, tuple(sets or ()), allow_import, tuple(args or ()))

    def results() -> tuple[str, list[CheckResult]]:
        loaded = targets.load(spec, options)
        out, name = [], ""
        for candidate in inputs or [""]:
            report = targets.inspect(loaded, [t for t in candidate.split(",") if t], options, search=False)
            out.append(CheckResult(report.input_shapes, report.failure is None, report.output_shapes, report.failure))
            name = report.model
        return name, out

    name, checked = guarded(results, debug)
    emit(
        fmt,
        lambda: check_json(name, checked),
        lambda: check_view(name, checked),
        failure=(
            "; ".join(f"{format_shapes(r.input_shapes)}: {failure_line(r.failure, name)}" for r in checked if r.failure)
            or None
        ),
        export=export,
    )


@register("list")
def list_specs(fmt: FormatOpt = Format.table, export: ExportOpt = None) -> None:
    """The bundled specs, usable by name in place of a file."""
    import json

    from layerscope.render.views import bundled_view
    from layerscope.spec.bundled import bundled_specs

    specs = bundled_specs()
    as_json = [{"name": b.name, "description": b.description, "path": str(b.path)} for b in specs]
    emit(fmt, lambda: json.dumps(as_json, indent=2), lambda: bundled_view(specs), export=export)


@register()
def diff(
    before: Annotated[str, typer.Argument(help="The spec (or bundled name) to compare from.", metavar="SPEC_A")],
    after: Annotated[str, typer.Argument(help="The spec to compare with it.", metavar="SPEC_B")],
    inputs: InputOpt = None,
    everything: Annotated[bool, typer.Option("--all", help="Show the unchanged layers too.")] = False,
    fmt: FormatOpt = Format.table,
    sets: SetOpt = None,
    sets_a: Annotated[
        list[str] | None, typer.Option("--set-a", metavar="NAME=VALUE", help="Override a var of SPEC_A only.")
    ] = None,
    sets_b: Annotated[
        list[str] | None, typer.Option("--set-b", metavar="NAME=VALUE", help="Override a var of SPEC_B only.")
    ] = None,
    model_a: Annotated[
        str | None, typer.Option("--model-a", metavar="NAME", help="Which model of SPEC_A, when it holds several.")
    ] = None,
    model_b: Annotated[
        str | None, typer.Option("--model-b", metavar="NAME", help="Which model of SPEC_B, when it holds several.")
    ] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    allow_import: AllowImportOpt = False,
    export: ExportOpt = None,
    debug: DebugOpt = False,
) -> None:
    """What changed from SPEC_A to SPEC_B, layer by layer: layers, shapes, parameters; exit status 1 when they differ."""
    import json

    from layerscope.render import compare as compare_views
    from layerscope.render.text import failure_line
    from layerscope.report.diff import compare
    from layerscope.spec.model import ModelSpec

    def traced() -> tuple[Report, Report]:
        sides = []
        for side, spec, model, own in (("a", before, model_a, sets_a), ("b", after, model_b, sets_b)):
            options = Options(model, device, dtype, (*(sets or ()), *(own or ())), allow_import)
            try:
                sides.append((targets.load(spec, options), options))
            except LayerscopeError as e:  # diff names the side: --model-a, not --model
                e.hint = e.hint and e.hint.replace("--model NAME", f"--model-{side} NAME")
                raise
        specs = [s for s, _ in sides if isinstance(s, ModelSpec)]
        if not specs and not inputs:  # neither side says what to run on: nothing but the trees to compare
            raise UsageError(
                "comparing two Python models needs an input", hint="give it with --input, e.g. --input 1x3x224x224"
            )
        # a Python model compared with a spec runs on the spec's input, unless --input says otherwise
        texts = inputs or (targets.input_texts(specs[0]) if specs else [])
        a, b = (targets.inspect(s, [] if isinstance(s, ModelSpec) and not inputs else texts, o) for s, o in sides)
        return a, b

    changes = guarded(lambda: compare(*traced()), debug)
    failures = [failure_line(r.failure, r.model) for r in (changes.before, changes.after) if r.failure is not None]
    emit(
        fmt,
        lambda: json.dumps(changes.to_dict(), indent=2),
        lambda: compare_views.diff_view(changes, everything),
        failure="; ".join(failures) or None,
        export=export,
        differs=changes.differs(),
        notes=[f"note: not compared: {', '.join(changes.left_out)} (functional ops)"] if changes.left_out else [],
    )


@register("export")
def export_spec(
    spec: SpecArg = None,
    to: Annotated[
        Target, typer.Option("--to", help="What to write: python, a standalone nn.Module source file.")
    ] = Target.python,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of printing.", show_default=False),
    ] = None,
    inputs: InputOpt = None,
    model: ModelOpt = None,
    sets: SetOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The spec as a standalone PyTorch module (class per block, the spec's parameter names)."""
    from layerscope.builder.builder import build
    from layerscope.builder.to_python import to_python
    from layerscope.render.files import write_whole
    from layerscope.spec.model import ModelSpec

    options = Options(model, "meta", "float32", tuple(sets or ()))

    def source() -> str:
        if output is not None and spec is not None and Path(spec).exists() and output.resolve() == Path(spec).resolve():
            raise UsageError(f"{output} is the spec being exported", hint="write the Python to another file")
        loaded = targets.load(spec, options)
        assert isinstance(loaded, ModelSpec)
        built = build(loaded, targets.spec_inputs(loaded, inputs or []), device="meta")  # arguments, not weights
        if built.stopped_at is not None:
            raise UsageError(
                f"{loaded.name} does not accept its input at {built.stopped_at}, so its later layers cannot be written",
                hint="run `layerscope inspect` on it for the diagnosis",
            )
        where = spec if spec is not None else str(loaded.source.file)
        return to_python(loaded, built, where)

    text = guarded(source, debug)
    if output is None:
        writing(lambda: typer.echo(text, nl=False))
    else:
        guarded(lambda: write_whole(output, text), debug)


@register()
def weights(
    spec: Annotated[
        str,
        typer.Argument(
            help="Spec file, or a bundled spec's name; with --allow-import, a Python model pkg.module:Class.",
            metavar="SPEC",
            show_default=False,
        ),
    ],
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="A state_dict torch.save wrote (.pt, .bin; read with weights_only=True, never its code), or a .safetensors file.",
            metavar="CHECKPOINT",
            show_default=False,
        ),
    ],
    inputs: InputOpt = None,
    everything: Annotated[bool, typer.Option("--all", help="List the matching keys too.")] = False,
    fmt: FormatOpt = Format.table,
    model: ModelOpt = None,
    sets: SetOpt = None,
    allow_import: AllowImportOpt = False,
    args: ArgOpt = None,
    export: ExportOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Whether CHECKPOINT loads into the model: its missing, unexpected and shape-mismatched keys; exit 1 on any."""
    import json

    from layerscope.render.compare import weights_view

    options = Options(model, "meta", "float32", tuple(sets or ()), allow_import, tuple(args or ()))

    def compared() -> WeightsCheck:
        from layerscope import api
        from layerscope.spec.model import ModelSpec

        loaded = targets.load(spec, options)
        if isinstance(loaded, ModelSpec):
            return api.check_spec_weights(loaded, targets.spec_inputs(loaded, inputs or []), checkpoint)
        if inputs:
            raise UsageError("--input is for specs here", hint="a Python model's state_dict needs no input")
        return api.check_module_weights(loaded, checkpoint)

    check = guarded(compared, debug)
    emit(
        fmt,
        lambda: json.dumps(check.to_dict(), indent=2),
        lambda: weights_view(check, everything),
        failure=None
        if check.matches
        else f"{check.checkpoint}: does not load into {check.model}: "
        + ", ".join(f"{check.count(k)} {k}" for k in ("missing", "unexpected", "shape mismatch") if check.count(k))
        + (f" — {check.notes[-1]}" if check.notes else ""),  # the likeliest cause, in the line itself
        export=export,
        notes=[f"note: {note}" for note in check.notes],
    )


@register()
def schema() -> None:
    """The JSON Schema of spec files, for editors (the bundled configs point at it on their first line)."""
    import json

    from layerscope.spec.schema import spec_schema

    typer.echo(json.dumps(spec_schema(), indent=2))
