"""The command line's options, declared once: typer reads each command's options from its signature."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


SpecArg = Annotated[
    str | None,
    typer.Argument(
        help="Spec file, or a bundled spec's name (see `layerscope list`). Omit it when the current directory holds exactly one .yaml spec.",
        show_default=False,
        metavar="SPEC",
        autocompletion=lambda incomplete: complete_spec(incomplete),
    ),
]
InputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="SHAPE",
        help="Input shape such as 1x3x32x32, optionally :dtype (5:int64); NAME=SHAPE passes a Python model's keyword input (attention_mask=1x128:int64). Repeat for several inputs. Default: the spec's input:.",
    ),
]
FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format", "-f", help="table for people; json for scripts; markdown for docs and PRs; csv for spreadsheets."
    ),
]
ExportOpt = Annotated[
    Path | None,
    typer.Option(
        "--export",
        metavar="FILE",
        help="Also write the table to FILE.svg or FILE.html (rich's exporters), whatever --format prints.",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", metavar="NAME", help="Which model, when the file holds several (---).")
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        metavar="DEVICE",
        help="auto (real CPU tensors up to 256 MiB and 0.5 G multiply-adds, else meta), cpu, meta or cuda.",
    ),
]
DepthOpt = Annotated[
    int | None,
    typer.Option("--depth", "-d", min=0, metavar="N", help="Show layers nested at most this deep (0: the model only)."),
]
DtypeOpt = Annotated[
    str,
    typer.Option("--dtype", metavar="DTYPE", help="Parameter and input dtype: float32, bfloat16, float16 or float64."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", metavar="NAME=VALUE", help="Override a var of the spec, e.g. --set classes=100. Repeatable."
    ),
]
RfOpt = Annotated[
    bool,
    typer.Option(
        "--rf",
        help="Add the receptive field, jump and start of each layer on a spatial path (inspect; JSON always has them).",
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks instead of one-line errors.")]
AllowImportOpt = Annotated[
    bool,
    typer.Option(
        "--allow-import", help="Let SPEC be Python code, pkg.module:ClassOrFactory: importing it runs that code."
    ),
]
ArgOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--arg",
        "-a",
        metavar="NAME=VALUE",
        help="A keyword argument for a Python-defined model's class or factory; VALUE is a Python literal (None, True, 3, 1e-3, [1, 2], 'text'), else text.",
    ),
]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed", metavar="N", help="Seed of the values made for a Python model's inputs (never torch's global RNG)."
    ),
]

TrainOpt = Annotated[
    bool,
    typer.Option("--train", help="Add the training memory: parameters, gradients, optimizer state, saved activations."),
]
OptimizerOpt = Annotated[
    str | None, typer.Option("--optimizer", metavar="NAME", help="With --train: sgd, adam or adamw (default adam).")
]
MomentumOpt = Annotated[
    float | None, typer.Option("--momentum", metavar="F", help="With --train --optimizer sgd: its momentum (0: none).")
]
WatchOpt = Annotated[
    bool,
    typer.Option(
        "--watch", help="Run again each time the spec file is saved (a broken edit shows its error); Ctrl-C stops."
    ),
]


def complete_spec(incomplete: str) -> list[str]:
    """Shell completion for SPEC: bundled names and the .yaml files here that start with `incomplete`."""
    from layerscope.spec.bundled import bundled_specs, looks_like_spec

    names = {b.name for b in bundled_specs()}
    names |= {p.name for p in Path.cwd().iterdir() if looks_like_spec(p)}
    return sorted(n for n in names if n.startswith(incomplete))


class Target(str, enum.Enum):
    python = "python"


@dataclass(frozen=True)
class Options:
    """What every spec command takes besides the spec and its inputs."""

    model: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    sets: tuple[str, ...] = ()
    allow_import: bool = False
    args: tuple[str, ...] = ()  # --arg, for a Python-defined model
    seed: int = 0  # --seed, for the values of a Python-defined model's inputs
    train: tuple[bool, str | None, float | None] = (False, None, None)  # --train, --optimizer, --momentum
