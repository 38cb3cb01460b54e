"""A failing run against a passing one, on the tutorial models: python benchmarks/failures.py

For each model, `layerscope shapes` runs once on an input that fits and once on one that does not
(the diagnosis then looks for inputs that fit). Both run as fresh processes, the rounds
interleaved so a slow moment of the machine hits both alike; the ratio is the failing run's
median wall time over the passing run's, measured in this run. The in-process columns time the
same two calls of `layerscope.api.inspect_spec` after a warm-up: the diagnosis's own cost,
without the ~1 s of starting Python and importing torch that both commands share.

Target (issue 18): every failing command within 1.3x its passing one. With --strict, exits 1
if one is not.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = sys.executable
_SCRIPT = Path(PYTHON).with_name("layerscope")
LAYERSCOPE = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "layerscope"]
TARGET = 1.3

# The issue's own cases: a batch merged by flatten (start_dim 0), and a conv net that 1x3x55x55 fits.
FLAT = """name: Flat
input: {shape: [4, 1, 5, 5]}
layers:
  - {op: Conv2d, in_channels: 1, out_channels: 2, kernel_size: 3}
  - {op: flatten, start_dim: 0}
  - {op: Linear, in_features: 18, out_features: 3}
"""
CONV55 = """name: Conv55
input: {shape: [1, 3, 55, 55]}
layers:
  - {op: Conv2d, in_channels: 3, out_channels: 4, kernel_size: 11, stride: 4}
  - {op: relu}
  - {op: MaxPool2d, kernel_size: 3, stride: 2}
  - {op: flatten, start_dim: 1}
  - {op: Linear, in_features: 100, out_features: 10}
"""

# model → (an input that fits, one that does not); None: the spec's own input
CASES: dict[str, tuple[str | None, str]] = {
    "lenet": (None, "1x1x28x28"),
    "classifier": (None, "1x3x16x16"),
    "tinymodel": (None, "1x50"),
    "exercise_convnet": (None, "1x1x6x6"),
    "single_neuron": (None, "1x12"),
    "lstm_tagger": (None, "7:float32"),
    "flat.yaml": ("1x1x5x5", "4x1x5x5"),
    "conv55.yaml": (None, "1x3x64x64"),
}


def command(model: str, shape: str | None) -> list[str]:
    return [*LAYERSCOPE, "shapes", model, *(["--input", shape] if shape else [])]


def wall(cmd: list[str], cwd: Path, fits: bool) -> float:
    """Seconds one run of `cmd` takes; its exit status must say whether the input fits."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, check=False)  # noqa: S603 - our own commands
    seconds = time.perf_counter() - start
    if done.returncode != (0 if fits else 1):
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr.decode()}")
    return seconds


def in_process(model: str, shape: str | None, cwd: Path, repeat: int) -> float:
    """Median seconds of inspect_spec on `shape` within this process, after one warm-up call."""
    from layerscope.api import inspect_spec, load, with_shapes
    from layerscope.spec.shapes import parse_input

    spec = load(str(cwd / model) if model.endswith(".yaml") else model)
    inputs = with_shapes(spec, [parse_input(shape)] if shape else [])
    inspect_spec(spec, inputs)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        inspect_spec(spec, inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds of every command (default 5)")
    parser.add_argument("--strict", action="store_true", help=f"exit 1 if a failing run takes over {TARGET}x")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "flat.yaml").write_text(FLAT)
        (cwd / "conv55.yaml").write_text(CONV55)
        runs: dict[tuple[str, bool], list[float]] = {}
        for _ in range(args.repeat):
            for model, (good, bad) in CASES.items():
                for fits, shape in ((True, good), (False, bad)):
                    runs.setdefault((model, fits), []).append(wall(command(model, shape), cwd, fits))
        for model, (good, bad) in CASES.items():
            passing, failing = (statistics.median(runs[model, fits]) for fits in (True, False))
            inside = [in_process(model, shape, cwd, args.repeat) for shape in (good, bad)]
            rows.append((model, bad, passing, failing, inside[0], inside[1]))
    print("| model | failing input | passing | failing | ratio | in-process passing | failing | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for model, bad, passing, failing, in_pass, in_fail in rows:
        print(
            f"| {model} | {bad} | {passing:.2f} s | {failing:.2f} s | **{failing / passing:.2f}×** "
            f"| {1000 * in_pass:.1f} ms | {1000 * in_fail:.1f} ms | {in_fail / in_pass:.1f}× |"
        )
    worst = max(failing / passing for _, _, passing, failing, _, _ in rows)
    print(f"\nworst failing/passing ratio {worst:.2f}× (target ≤ {TARGET}×)")
    if args.strict and worst > TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
