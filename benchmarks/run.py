"""layerscope's speed and memory against baselines, measured in one run: python benchmarks/run.py

Each command runs as a fresh process, the rounds interleaved so that a slow moment of the machine
hits every command alike; the table shows each command's median wall time and its peak RSS. The
ResNet-50 comparison with torchinfo runs in one child process: both tools get the same module and
input, each is warmed up once, then timed in alternation.

Prints a Markdown table (README's "Speed and memory" section is one); with --strict, exits 1
if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
_SCRIPT = Path(PYTHON).with_name("layerscope")  # the command users run, else the module
LAYERSCOPE = [str(_SCRIPT)] if _SCRIPT.exists() else [PYTHON, "-m", "layerscope"]
DEPTHS = (1, 1000, 2500, 5000, 10_000)  # layers in the generated specs


def run(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of `cmd`; a failure stops the benchmark."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603 - our own commands
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} exited {child.returncode}:\n{err.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def measure(commands: dict[str, list[str]], repeat: int, cwd: Path) -> dict[str, tuple[float, float]]:
    """Median wall time and largest peak RSS of each command over `repeat` interleaved rounds."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, cmd in commands.items():
            runs[name].append(run(cmd, cwd))
    return {
        name: (statistics.median(w for w, _ in results), max(r for _, r in results)) for name, results in runs.items()
    }


def deep_spec(layers: int) -> str:
    """A spec of `layers` layers written out one by one: Linear(16) and relu in turn."""
    lines = [f"name: Deep{layers}", "input: {shape: [1, 16]}", "layers:"]
    lines += ["  - {op: Linear, out_features: 16}" if i % 2 == 0 else "  - {op: relu}" for i in range(layers)]
    return "\n".join(lines) + "\n"


IN_PROCESS = """
import json, statistics, sys, time
import torch, torchinfo
import layerscope

model = layerscope.build("resnet50")  # a real nn.Module with torch's initial weights
size = (1, 3, 224, 224)

def with_torchinfo():
    return torchinfo.summary(model, input_size=size, verbose=0, device="cpu").total_params

def with_layerscope():  # for a model this size: a trace on meta stand-ins for its weights
    return layerscope.inspect(model, size).total_params

first = {}
for name, f in (("torchinfo", with_torchinfo), ("layerscope", with_layerscope)):
    start = time.perf_counter(); total = f(); first[name] = time.perf_counter() - start
    assert total == 25_557_032, (name, total)
times = {"torchinfo": [], "layerscope": []}
for _ in range(int(sys.argv[1])):
    for name, f in (("torchinfo", with_torchinfo), ("layerscope", with_layerscope)):
        start = time.perf_counter(); f(); times[name].append(time.perf_counter() - start)
print(json.dumps({"first": first, "median": {k: statistics.median(v) for k, v in times.items()}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds of every command (default 5)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        for n in DEPTHS:
            (cwd / f"deep{n}.yaml").write_text(deep_spec(n))
        commands = {
            "pass": [PYTHON, "-c", "pass"],
            "help": [*LAYERSCOPE, "--help"],
            "list": [*LAYERSCOPE, "list"],
            "torch": [PYTHON, "-c", "import torch"],
            "lenet": [*LAYERSCOPE, "inspect", "lenet"],
            "llama_7b": [*LAYERSCOPE, "inspect", "llama_7b"],
            "llama2_70b": [*LAYERSCOPE, "inspect", "llama2_70b"],
            **{f"deep{n}": [*LAYERSCOPE, "inspect", f"deep{n}.yaml"] for n in DEPTHS},
        }
        t = measure(commands, args.repeat, cwd)
        child = subprocess.run(  # noqa: S603 - our own command
            [PYTHON, "-c", IN_PROCESS, str(max(args.repeat, 5))], capture_output=True, text=True, check=True
        )
        resnet = json.loads(child.stdout)

    per_layer = {n: 1000 * (t[f"deep{n}"][0] - t["deep1"][0]) / (n - 1) for n in DEPTHS[1:]}
    ratio = resnet["median"]["torchinfo"] / resnet["median"]["layerscope"]
    rows = [
        (
            "`layerscope --help`",
            f"{t['help'][0]:.2f} s",
            f"`python -c pass` {t['pass'][0]:.2f} s",
            "≤ 0.25 s",
            t["help"][0] <= 0.25,
        ),
        ("`layerscope list`", f"{t['list'][0]:.2f} s", "no torch import", "≤ 0.25 s", t["list"][0] <= 0.25),
        (
            "`inspect lenet`",
            f"{t['lenet'][0]:.2f} s, {t['lenet'][1]:.0f} MB",
            f"`import torch` {t['torch'][0]:.2f} s, {t['torch'][1]:.0f} MB: **{t['lenet'][0] / t['torch'][0]:.2f}×**",
            "≤ 1.15×",
            t["lenet"][0] <= 1.15 * t["torch"][0],
        ),
        (
            "`inspect llama_7b` (FLOPs incl.)",
            f"{t['llama_7b'][0]:.2f} s, {t['llama_7b'][1]:.0f} MB",
            "6.7 B params, meta",
            "≤ 3 s, ≤ 700 MB",
            t["llama_7b"][0] <= 3 and t["llama_7b"][1] <= 700,
        ),
        (
            "`inspect llama2_70b`",
            f"{t['llama2_70b'][0]:.2f} s, {t['llama2_70b'][1]:.0f} MB",
            "69 B params, meta",
            "≤ 700 MB",
            t["llama2_70b"][1] <= 700,
        ),
        *[
            (
                f"`inspect` of {n:,} layers",
                f"{t[f'deep{n}'][0]:.2f} s, {t[f'deep{n}'][1]:.0f} MB",
                f"1 layer {t['deep1'][0]:.2f} s: **{per_layer[n]:.3f} ms/layer**",
                "≤ 0.5 ms/layer",
                per_layer[n] <= 0.5,
            )
            for n in DEPTHS[1:]
        ],
        (
            "ResNet-50 1x3x224x224, in-process",
            f"{1000 * resnet['median']['layerscope']:.0f} ms (first call {1000 * resnet['first']['layerscope']:.0f} ms)",
            f"torchinfo.summary {1000 * resnet['median']['torchinfo']:.0f} ms (first {1000 * resnet['first']['torchinfo']:.0f} ms): **{ratio:.1f}× faster**",
            "≥ 3×",
            ratio >= 3,
        ),
    ]
    import torch  # only for the machine line, after every measurement

    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}; median of {args.repeat} runs\n"
    )
    print("| Measure | layerscope | Baseline | Target | Met |")
    print("|---|---|---|---|---|")
    for measure_name, ours, baseline, target, met in rows:
        print(f"| {measure_name} | {ours} | {baseline} | {target} | {'yes' if met else '**no**'} |")
    growth = per_layer[DEPTHS[-1]] / per_layer[DEPTHS[1]]
    print(f"\nPer-layer cost at {DEPTHS[-1]:,} layers is {growth:.2f}× the cost at {DEPTHS[1]:,} (1.00 = linear).")
    sys.exit(1 if args.strict and not all(met for *_, met in rows) else 0)


if __name__ == "__main__":
    main()
