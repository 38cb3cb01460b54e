"""`inspect --train` against a real CPU training step and accelerate's estimate: python benchmarks/train_memory.py

For each model: what layerscope says autograd saves for backward; what a real CPU training-mode
forward of the same model saves, counted here with torch's saved-tensor hooks (each storage once,
parameters, buffers and the input left out; the small models only: llama_7b's weights would be
27 GB); accelerate's estimate of a training step, which counts no activations (parameters, gradients and Adam's two states: 4× the
parameters' bytes); and layerscope's total. Then the cost of --train: inspect with and without it,
in this process, the median of --repeat runs each.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.autograd.graph import saved_tensors_hooks

import layerscope

MODELS = (("lenet", (1, 1, 32, 32)), ("resnet18", (1, 3, 224, 224)), ("llama_7b", None))  # None: the spec's own input
REAL_STEP_BYTES = 2 << 30  # build and run models up to this size for real


def saved_by_a_real_forward(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes autograd saves in a CPU training-mode forward."""
    model.train()
    left_out = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), x]}
    storages: dict[int, int] = {}
    kept = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        kept.append(t)
        address = t.untyped_storage().data_ptr()
        if address not in left_out:
            storages[address] = t.untyped_storage().nbytes()
        return t

    with torch.enable_grad(), saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(storages.values())


def row(name: str, shape: tuple[int, ...] | None) -> list[str]:
    report = layerscope.inspect(name, shape, train=True)
    memory = report.train_memory
    assert memory is not None
    real = "-"
    if 4 * report.param_bytes <= REAL_STEP_BYTES:
        model = layerscope.build(name, shape)
        x = torch.randn(report.input_shapes[0])
        saved = saved_by_a_real_forward(model, x)
        real = mib(saved) + (
            " (equal)" if saved == memory.activations_bytes else f" ({saved / memory.activations_bytes:.3f}×)"
        )
    return [
        f"{name} ({'x'.join(map(str, report.input_shapes[0]))}, {report.device})",
        mib(memory.activations_bytes),
        real,
        mib(4 * report.param_bytes),
        mib(memory.total_bytes),
    ]


def mib(n: int) -> str:
    """Bytes in KiB, MiB or GiB."""
    unit = next((u for u in (3, 2) if n >= 1 << (10 * u)), 1)
    return f"{n / (1 << (10 * unit)):,.2f} {('KiB', 'MiB', 'GiB')[unit - 1]}"


def cost(name: str, repeat: int) -> list[str]:
    """Median seconds of inspect without and with --train, alternated."""
    plain, train = [], []
    layerscope.inspect(name, train=True)  # warm: imports, first meta op
    for _ in range(repeat):
        start = time.perf_counter()
        layerscope.inspect(name)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        layerscope.inspect(name, train=True)
        train.append(time.perf_counter() - start)
    a, b = statistics.median(plain), statistics.median(train)
    return [name, f"{a:.2f} s", f"{b:.2f} s", f"{b / a:.2f}×"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print(
        "| model (input, device) | saved for backward (layerscope) | real CPU forward saves | accelerate-style estimate (4× params, no activations) | layerscope total (adam) |"
    )
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, shape in MODELS:
        print("| " + " | ".join(row(name, shape)) + " |", flush=True)
    print()
    print("| spec | inspect | inspect --train | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name in ("resnet18", "llama2_70b"):
        print("| " + " | ".join(cost(name, options.repeat)) + " |", flush=True)


if __name__ == "__main__":
    main()
