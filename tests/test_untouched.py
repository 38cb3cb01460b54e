"""Inspecting a user's module never changes it: weights, requires_grad, modes, hooks, attributes,
caches, parametrizations, RNG states — on every device layerscope may pick, including the fallback
from meta to the CPU and the in-place run of a module deepcopy refuses."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import layerscope
from layerscope.run import devices

from tricky_models import CATALOGUE


def fingerprint(value: Any, seen: set[int] | None = None) -> Any:
    """A comparable picture of a value: tensors by device, dtype, shape, requires_grad and bytes;
    containers item by item; modules and functions by identity; anything else by repr."""
    seen = set() if seen is None else seen
    if isinstance(value, torch.Tensor):
        data = None if value.is_meta else value.detach().cpu().contiguous().view(-1).view(torch.uint8).tolist()
        return ("tensor", id(value), str(value.device), str(value.dtype), tuple(value.shape), value.requires_grad, data)
    if isinstance(value, (nn.Module, torch.Generator)) or callable(value):
        return ("object", type(value).__name__, id(value))
    if id(value) in seen:
        return ("cycle", id(value))
    seen.add(id(value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(k), fingerprint(v, seen)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set)):
        return (type(value).__name__, tuple(fingerprint(v, seen) for v in value))
    if type(value).__module__ in ("builtins", "numpy"):
        return ("value", repr(value))
    return ("object", type(value).__name__, id(value))


def state(model: nn.Module) -> dict[str, Any]:
    """Everything inspect must leave as it was, module by module."""
    return {
        name: {key: fingerprint(value) for key, value in vars(module).items()}
        for name, module in model.named_modules(remove_duplicate=False)
    }


def rng_states() -> tuple[Any, ...]:
    return torch.random.get_rng_state(), random.getstate(), np.random.get_state()


def real_output(model: nn.Module, args: tuple, kwargs: dict) -> tuple[Any, int]:
    """The model's own forward, seeded, and the parameters it has after (made in forward included)."""
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    with torch.no_grad():
        output = model(*args, **kwargs)
    return output, sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def made(factory: Any) -> nn.Module:
    torch.manual_seed(1)  # two models from one factory and seed are equal
    return factory()


def no_meta_anywhere(model: nn.Module) -> bool:
    def walk(value: Any, seen: set[int]) -> bool:
        if id(value) in seen:
            return True
        seen.add(id(value))
        if isinstance(value, torch.Tensor):
            return not value.is_meta
        if isinstance(value, dict):
            return all(walk(v, seen) for v in value.values())
        if isinstance(value, (list, tuple)):
            return all(walk(v, seen) for v in value)
        return True

    seen: set[int] = set()
    return all(walk(v, seen) for m in model.modules() for v in vars(m).values())


@pytest.fixture(params=["auto", "cpu", "meta", "auto-forced-to-meta"])
def device(request, monkeypatch) -> str:
    if request.param == "auto-forced-to-meta":  # as a big model would: meta first, then the CPU to confirm
        monkeypatch.setattr(devices, "CPU_BUDGET_BYTES", 0)
        return "auto"
    return request.param


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_inspecting_leaves_the_model_as_it_was(name: str, device: str) -> None:
    factory, make_inputs = CATALOGUE[name]
    model = made(factory)  # in train mode, as made: the demanding case
    args, kwargs = make_inputs()
    expected, params = real_output(made(factory), [a.clone() for a in args], kwargs)  # its twin's first forward
    before_state, before_rng = state(model), rng_states()
    given = [a.clone() for a in args]

    report = layerscope.inspect(model, inputs=args, kwargs=kwargs, device=device)

    assert state(model) == before_state
    assert all(torch.equal(a, b) for a, b in zip(args, given, strict=True))  # the caller's inputs too
    assert rng_states_equal(rng_states(), before_rng)
    assert no_meta_anywhere(model)
    torch.testing.assert_close(real_output(model, args, kwargs)[0], expected, equal_nan=True)  # its first forward
    assert report.total_params == params
    if device != "meta":  # meta is asked for by name: a failure there is reported as seen on meta
        assert report.failure is None, report.failure


def rng_states_equal(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    torch_a, python_a, numpy_a = a
    torch_b, python_b, numpy_b = b
    same_numpy = all(
        np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(numpy_a, numpy_b, strict=True)
    )
    return torch.equal(torch_a, torch_b) and python_a == python_b and same_numpy


@pytest.mark.parametrize("name", sorted(CATALOGUE))
@pytest.mark.parametrize("where", ["auto", "cpu", "meta"])
def test_a_training_inspect_leaves_the_model_as_it_was(name: str, where: str) -> None:
    """--train runs a second forward in training mode with gradients (BatchNorm's running statistics
    move, Dropout draws, `train()` may flip requires_grad): on the shadow, never on the model."""
    factory, make_inputs = CATALOGUE[name]
    model = made(factory)
    model.eval()  # the mode the training forward must not leave behind
    args, kwargs = make_inputs()
    expected, _ = real_output(made(factory).eval(), [a.clone() for a in args], kwargs)
    before_state, before_rng = state(model), rng_states()
    grads = [(p, p.requires_grad, p.grad) for p in model.parameters()]

    layerscope.inspect(model, inputs=args, kwargs=kwargs, device=where, train=True)

    assert state(model) == before_state
    assert rng_states_equal(rng_states(), before_rng)
    assert all(p.requires_grad == flag and p.grad is grad for p, flag, grad in grads)
    assert no_meta_anywhere(model) and not model.training
    torch.testing.assert_close(real_output(model, args, kwargs)[0], expected, equal_nan=True)
