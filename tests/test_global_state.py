"""Inspecting leaves torch and the process as it found them: mode stacks, defaults, backend flags,
RNG states, GC thresholds, warning filters, import hooks, and the code, closures and attributes
of every torch function (no patching, not even for a moment longer than a run)."""

from __future__ import annotations

import gc
import random
import sys
import types
import warnings
from typing import Any

import pytest
import torch
from torch import nn

import layerscope
from layerscope.report.assemble import run_and_report

from higher_order_models import Cond


def _torch_functions() -> dict[int, tuple[Any, ...]]:
    """Every torch function's code, closure contents and attributes, and whether it holds a stand-in of
    layerscope's, by identity."""
    found = {}
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType and (obj.__module__ or "").startswith("torch"):
            closure = tuple(id(c.cell_contents) for c in obj.__closure__ or () if _filled(c))
            # torch's own wrappers keep a skipping version of their function once torch._dynamo is
            # imported (torch.cond imports it): that attribute is torch's to set, so only its value is checked
            attributes = tuple(sorted(set(vars(obj)) - {"__dynamo_disable"}))
            cached = vars(obj).get("__dynamo_disable")
            found[id(obj)] = (
                obj,
                obj.__code__,
                closure,
                attributes,
                type(cached).__module__ == "layerscope._torch_compat",
            )
    return found


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _state() -> dict[str, Any]:
    from torch.overrides import _get_current_function_mode_stack
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    return {
        "dispatch modes": list(_get_current_dispatch_mode_stack()),
        "function modes": list(_get_current_function_mode_stack()),
        "default device": torch.get_default_device(),
        "default dtype": torch.get_default_dtype(),
        "grad": torch.is_grad_enabled(),
        "mkldnn": torch.backends.mkldnn.enabled,
        "mha fast path": torch.backends.mha.get_fastpath_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "torch rng": torch.random.get_rng_state(),
        "python rng": random.getstate(),
        "gc thresholds": gc.get_threshold(),
        "warning filters": list(warnings.filters),
        "import hooks": list(sys.meta_path),
    }


def _same(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    changed = []
    for key, value in before.items():
        equal = torch.equal(value, after[key]) if isinstance(value, torch.Tensor) else value == after[key]
        if not equal:
            changed.append(key)
    return changed


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc(x))


SMALL, COND = Small(), Cond()  # made here: constructing a module draws from the RNG, inspecting it must not
RUNS = {
    "spec on the CPU": lambda: layerscope.inspect("lenet"),
    "spec on meta": lambda: layerscope.inspect("resnet18", device="meta"),
    "a spec that fails, with its hint search": lambda: layerscope.inspect("classifier", (1, 3, 16, 16)),
    "a module on the CPU": lambda: layerscope.inspect(SMALL, (2, 8)),
    "a module on meta": lambda: layerscope.inspect(SMALL, (2, 8), device="meta"),
    "torch.cond on meta": lambda: layerscope.inspect(COND, (2, 8), device="meta"),
    "a module traced as it is": lambda: run_and_report(SMALL, [torch.zeros(2, 8)]),
    "--train, a spec on the CPU": lambda: layerscope.inspect("bn_convnet", train=True),
    "--train, a spec on meta": lambda: layerscope.inspect("gpt2", device="meta", train=True, optimizer="sgd"),
    "--train, a module with Dropout on the CPU": lambda: layerscope.inspect(SMALL, (2, 8), device="cpu", train=True),
    "--train, a module on meta": lambda: layerscope.inspect(SMALL, (2, 8), device="meta", train=True),
}


@pytest.mark.parametrize("run", list(RUNS), ids=list(RUNS))
def test_inspecting_leaves_torch_as_it_was(run: str) -> None:
    RUNS[run]()  # once, so what a first run imports is there before the snapshot
    functions, state = _torch_functions(), _state()
    report = RUNS[run]()
    assert report is not None
    assert _same(state, _state()) == []
    after = _torch_functions()
    changed = [f[0].__qualname__ for key, f in functions.items() if key in after and after[key][1:] != f[1:]]
    assert changed == []
    assert not any(f[4] for f in after.values())  # no stand-in of layerscope's is left on a torch function


def test_a_library_run_on_meta_does_not_import_dynamo() -> None:
    """The saving the CLI used to buy with a process-wide patch, now for every caller and undone after."""
    import subprocess

    code = (
        "import sys, layerscope; layerscope.inspect('resnet18', device='meta'); print('torch._dynamo' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == "False", done.stderr


class Draws(nn.Module):
    """A forward that draws from torch's, Python's and numpy's global generators."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import numpy

        random.random()
        numpy.random.rand()
        return self.fc(x) + torch.randn(1)


def test_a_forward_that_draws_random_numbers_leaves_every_generator_as_it_was() -> None:
    import numpy

    model = Draws()
    torch_state, python_state, numpy_state = torch.random.get_rng_state(), random.getstate(), numpy.random.get_state()
    report = layerscope.inspect(model, (2, 8), device="cpu")
    assert report.failure is None
    assert torch.equal(torch_state, torch.random.get_rng_state()) and random.getstate() == python_state
    assert all(numpy.array_equal(a, b) for a, b in zip(numpy_state, numpy.random.get_state(), strict=True))


def test_the_first_inspect_of_a_process_draws_nothing_from_pythons_random() -> None:
    """rich draws from Python's random when it is first imported; layerscope's lazy API puts it back."""
    import subprocess

    code = (
        "import random, torch, layerscope\n"
        "state = random.getstate()\n"
        "layerscope.inspect(torch.nn.Linear(8, 4), (2, 8))\n"
        "print(random.getstate() == state)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert done.stdout.strip() == "True", done.stderr
