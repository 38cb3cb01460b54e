"""Spec stage, free tensors: a layer `param: {...}` or `buffer: {...}` whose output is a tensor it holds.

The tutorials' models keep tensors of their own next to their layers: a learned scale, a fixed
random projection (D2L's FixedHiddenMLP). A spec writes them as layers without an op, named like
any layer and used through `from:`. `param:` is an nn.Parameter (counted in the totals; with
`requires_grad: false` a frozen one); `buffer:` is a buffer (in no total, in the memory figure),
`persistent: false` keeping it out of the state_dict like a plain tensor attribute. Values come
from the tensor's own generator seeded by `seed:`, so a spec means one set of values and draws
nothing from torch's global RNG.
"""

from __future__ import annotations

import math
from typing import Any

from layerscope.errors import SpecError, did_you_mean
from layerscope.spec.catalog import yaml_hint
from layerscope.spec.expr import MAX_INT
from layerscope.spec.layer_spec import LayerSpec, TensorSpec, check_keys
from layerscope.spec.source import YMap

TENSOR_KINDS = ("param", "buffer")
INITS = ("zeros", "ones", "uniform", "normal")  # uniform: [0, 1) like torch.rand; normal: N(0, 1) like torch.randn
_KEYS = {
    "param": ("shape", "init", "seed", "requires_grad"),
    "buffer": ("shape", "init", "seed", "persistent"),
}
_EXAMPLE = "e.g. param: {shape: [20, 20], init: uniform}"


def tensor_layer(item: YMap, name: str) -> LayerSpec:
    """A `param:` or `buffer:` layer; `item` has its `${...}` resolved."""
    kinds = [k for k in TENSOR_KINDS if k in item]
    if len(kinds) > 1:
        raise SpecError("a layer holds a param: or a buffer:, not both", source=item.key_sources["buffer"])
    kind = kinds[0]
    if "from" in item:
        raise SpecError(
            f"a {kind}: layer reads no input, so it takes no from:",
            source=item.key_sources["from"],
            hint="its output is the tensor: name it in the from: of the layers that use it",
        )
    check_keys(item, ("name", "when", kind), f"{kind} layer")
    body = item[kind]
    if not isinstance(body, YMap):
        raise SpecError(f"{kind}: must be a mapping", source=item.where(kind), hint=_EXAMPLE)
    check_keys(body, _KEYS[kind], kind)
    if "shape" not in body:
        raise SpecError(f"{kind}: needs a shape:", source=item.where(kind), hint=_EXAMPLE)
    init = body.get("init", "zeros")
    if init not in INITS:
        raise SpecError(
            f"{kind} init must be one of {', '.join(INITS)}, got {init!r}",
            source=body.where("init"),
            hint=(did_you_mean(init, INITS) if isinstance(init, str) else None) or _EXAMPLE,
        )
    flag = "requires_grad" if kind == "param" else "persistent"
    tensor = TensorSpec(
        kind=kind,
        shape=_shape(body, kind),
        init=init,
        seed=_seed(body),
        flag=_flag(body, flag),
    )
    return LayerSpec(name, kind, item.source, tensor=tensor)


def _shape(body: YMap, kind: str) -> tuple[int, ...]:
    shape = body["shape"]
    where = body.where("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise SpecError(f"{kind} shape: must be a list of sizes", source=where, hint=yaml_hint(shape) or _EXAMPLE)
    if any(d <= 0 for d in shape):
        raise SpecError(f"{kind} shape: sizes must be positive, got {shape}", source=where, hint="[] is a scalar")
    if math.prod(shape) > MAX_INT:
        raise SpecError(f"{kind} shape: {shape} has more elements than a tensor can hold", source=where)
    return tuple(shape)


def _seed(body: YMap) -> int:
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_INT:
        raise SpecError(f"seed: must be a whole number from 0, got {seed!r}", source=body.where("seed"))
    return seed


def _flag(body: YMap, key: str) -> bool:
    value: Any = body.get(key, True)
    if not isinstance(value, bool):
        raise SpecError(f"{key}: must be true or false, got {value!r}", source=body.where(key), hint=yaml_hint(value))
    return value
