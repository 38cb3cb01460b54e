"""layerscope.inspect against torchinfo.summary on real models, in one process: python benchmarks/real_models.py

The models are those of the real-library tests: timm architectures and torchvision classifiers
where those libraries are installed (the second test environment, README "Development"), and the
Hugging Face models of tests/hf_models.py. Each model is made once with random init (nothing is
downloaded); both tools get the same module and input, each is warmed up once, then they are
timed in alternation, `--repeat` rounds, and the median of each is compared.

Targets (issue 14): the median ratio layerscope/torchinfo at most 0.7, no model above 1.5.
Prints a Markdown table; with --strict, exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchinfo
from torch.utils.flop_counter import FlopCounterMode

import layerscope

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TIMM = (
    "resnet18 resnet50 efficientnet_b0 mobilenetv3_small_100 mobilenetv2_100 convnext_tiny vit_tiny_patch16_224 "
    "deit_tiny_patch16_224 swin_tiny_patch4_window7_224 levit_128s regnety_002 densenet121 sequencer2d_s "
    "mixer_b16_224 poolformer_s12 ghostnet_100 lcnet_050 rexnet_100 tinynet_a coat_lite_tiny"
).split()
TORCHVISION = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")
HUGGING_FACE = ("bert", "gpt2", "t5", "llama", "vit")
MEDIAN_TARGET, WORST_TARGET = 0.7, 1.5

Case = tuple[str, Callable[[], torch.nn.Module], Callable[[], dict[str, Any]]]


def cases() -> list[Case]:
    """(name, model factory, inputs as keyword arguments of both tools' calls) for what is installed."""
    found: list[Case] = []
    if importlib.util.find_spec("timm") is not None:
        import timm

        for name in TIMM:
            size = timm.get_pretrained_cfg(name).input_size if timm.get_pretrained_cfg(name) else (3, 224, 224)
            found.append((f"timm {name}", lambda n=name: timm.create_model(n, pretrained=False), _image(size)))
    if importlib.util.find_spec("torchvision") is not None:
        import torchvision

        for name in TORCHVISION:
            found.append((f"torchvision {name}", lambda n=name: torchvision.models.get_model(n), _image((3, 224, 224))))
    if importlib.util.find_spec("transformers") is not None:
        from hf_models import MODELS

        for name in HUGGING_FACE:
            factory, make = MODELS[name]
            found.append((f"transformers {name}", factory, lambda m=make: {"kwargs": m()}))
    return found


def _image(size: tuple[int, ...]) -> Callable[[], dict[str, Any]]:
    return lambda: {"inputs": torch.randn(1, *size)}


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def compare(case: Case, repeat: int) -> tuple[float, float, float, str]:
    """Median seconds of layerscope, of torchinfo and of a plain forward under FlopCounterMode on
    one model (what counting every op's FLOPs costs by itself), and the device layerscope used."""
    _, factory, make = case
    model = factory().eval()
    given = make()
    ours = lambda: layerscope.inspect(model, inputs=given.get("inputs"), kwargs=given.get("kwargs"))  # noqa: E731
    data = given.get("inputs", given.get("kwargs"))
    theirs = lambda: torchinfo.summary(model, input_data=data, verbose=0)  # noqa: E731
    args, kwargs = (given["inputs"],) if "inputs" in given else (), given.get("kwargs", {})

    def counted() -> None:
        with torch.no_grad(), FlopCounterMode(display=False):
            model(*args, **kwargs)

    device = ours().device
    theirs()
    counted()
    a, b, c = [], [], []
    for _ in range(repeat):
        a.append(timed(ours))
        b.append(timed(theirs))
        c.append(timed(counted))
    return statistics.median(a), statistics.median(b), statistics.median(c), device


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", help="substring of the model names to run")
    parser.add_argument("--strict", action="store_true")
    options = parser.parse_args()
    torch.set_num_threads(1)  # one core each, as a loaded 2-core machine gives: thread contention is noise
    rows = []
    print(
        f"torch {torch.__version__}, torchinfo {torchinfo.__version__}; median of {options.repeat} alternating rounds\n"
    )
    print("| model | layerscope | torchinfo | ratio | forward + FlopCounterMode | layerscope ran on |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for case in cases():
        if options.only and options.only not in case[0]:
            continue
        ours, theirs, counting, device = compare(case, options.repeat)
        rows.append(ours / theirs)
        print(
            f"| {case[0]} | {ours * 1000:.0f} ms | {theirs * 1000:.0f} ms | {ours / theirs:.2f} "
            f"| {counting * 1000:.0f} ms | {device} |",
            flush=True,
        )
    if not rows:
        print("no models: install timm, torchvision or transformers")
        return 1
    median, worst = statistics.median(rows), max(rows)
    print(
        f"\n{len(rows)} models: median ratio {median:.2f} (target ≤ {MEDIAN_TARGET}), worst {worst:.2f} (target ≤ {WORST_TARGET})"
    )
    return int(options.strict and (median > MEDIAN_TARGET or worst > WORST_TARGET))


if __name__ == "__main__":
    raise SystemExit(main())
