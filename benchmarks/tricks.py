"""What each of layerscope's speed tricks saves, measured in one run: python benchmarks/tricks.py

Each trick is measured on the command it is for, in fresh processes, with the trick and without
it (the child turns it off before the command runs), rounds interleaved; the table shows the
median wall times and the saving. A trick earns its place by saving at least 0.1 s somewhere
(and by being safe, which the tests check: see README's "Speed and memory").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import deep_spec

PYTHON = sys.executable
LAZY = "name: Lazy\ninput: {shape: [8, 16384]}\nlayers:\n  - {op: LazyLinear, out_features: 3840}\n"  # 252 MB: near the CPU budget
KEEP = 0.1  # seconds a trick must save to stay

# trick → (why it exists, the command it is for (CLI arguments, or Python run in the child), Python
# that turns it off in the child)
TRICKS: dict[str, tuple[str, list[str] | str, str]] = {
    "fast exit": (
        "skip the interpreter's teardown of torch",
        ["inspect", "lenet"],
        "import os; os.environ['LAYERSCOPE_FAST_EXIT'] = '0'",
    ),
    "fewer GC passes": (
        "the cyclic GC walks torch's ~200,000 objects",
        ["inspect", "deep10000.yaml"],
        "import gc; gc.set_threshold = lambda *a: None",
    ),
    "no dynamo import on meta": (
        "torch's meta kernels import torch._dynamo to ask how to be skipped",
        ["inspect", "resnet18", "--device", "meta"],
        "from layerscope import _torch_compat; _torch_compat._STAND_INS.install = lambda: None",
    ),
    "libyaml parser": (
        "PyYAML's Python parser is ~2-4x slower",
        "from pathlib import Path; from layerscope.spec.model import load_spec; load_spec(Path('deep10000.yaml'))",
        "from layerscope.spec import source; source._HAS_LIBYAML = False",
    ),
    "line-by-line tables": (
        "rich lays out each cell on its own",
        ["inspect", "deep10000.yaml"],
        "from layerscope.render.table import LineTable; LineTable.__rich_console__ = lambda s, c, o: iter([s.rich_table()])",
    ),
    "shape-only answers on meta": (
        "meta's BatchNorm, LayerNorm and elementwise kernels are Python decompositions",
        "import layerscope; model = layerscope.build('resnet50')\n"
        "for _ in range(10): layerscope.inspect(model, (1, 3, 224, 224))",
        "from layerscope.run import counting; counting.SHORTCUTS.clear()",
    ),
    "no initialisers for lazy layers": (
        "a lazy layer on the CPU initialises real weights on its first call; the tables never read them",
        ["inspect", "lazy.yaml"],
        "import contextlib, layerscope.builder.builder as b; b.no_init = contextlib.nullcontext",
    ),
}


def command(args: list[str] | str, off: str | None) -> list[str]:
    """The CLI (or Python code) as a child process, with one trick turned off first when `off` is given."""
    run = (
        args
        if isinstance(args, str)
        else f"import sys; sys.argv = ['layerscope', *{args!r}]\nfrom layerscope.cli import run; run()"
    )
    return [PYTHON, "-c", f"{off or 'pass'}\n{run}"]


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # noqa: S603
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds of every command (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "deep10000.yaml").write_text(deep_spec(10_000))
        (cwd / "lazy.yaml").write_text(LAZY)
        runs: dict[tuple[str, bool], list[float]] = {(t, on): [] for t in TRICKS for on in (True, False)}
        for _ in range(args.repeat):
            for trick, (_, cmd, off) in TRICKS.items():
                runs[trick, True].append(wall(command(cmd, None), cwd))
                runs[trick, False].append(wall(command(cmd, off), cwd))
    print(f"Median of {args.repeat} runs each; a trick stays if it saves ≥ {KEEP} s.\n")
    print("| Trick | Why | Command | With | Without | Saves | Stays |")
    print("|---|---|---|---|---|---|---|")
    for trick, (why, cmd, _) in TRICKS.items():
        on, off = statistics.median(runs[trick, True]), statistics.median(runs[trick, False])
        stays = "yes" if off - on >= KEEP else "**no**"
        shown = f"Python: `{cmd.splitlines()[-1][-60:]}`" if isinstance(cmd, str) else f"`{' '.join(cmd)}`"
        print(f"| {trick} | {why} | {shown} | {on:.2f} s | {off:.2f} s | {off - on:.2f} s | {stays} |")


if __name__ == "__main__":
    main()
