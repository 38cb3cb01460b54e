"""Importer, the fallback: a container torch.fx cannot trace, written from its recorded calls.

When fx refuses a container's forward (`len(sentence)`, `if x.sum() > 0`), one traced run of the
whole model on the given inputs (run/runner.py, real values on the CPU where they fit) shows what
the forward did: each child called, in call order, and the producer of every tensor it took in
(run/flow.py: `input:k`, `layer:i`, `join:j`). Each child call becomes a layer as the fx path makes
it (walk.child_layer), with `from:` where its producer is not the previous layer; a join of the
container's own (add, cat, mul) the spec's functional op of that name; and a recorded input shape
other than its producer's output shape (a view in Python between them) a `reshape` to the recorded
sizes. What the calls cannot show (another join op, an input of no recorded producer, which of a
tuple's tensors a child took) is refused here, naming the container; what they do not show at all
(`x * 2` between two layers, a loop calling a child a value-dependent number of times) is caught by
check_fallback: the spec's run must match the recorded run's layer calls, FLOPs and output values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from layerscope import limits
from layerscope.builder.builder import build
from layerscope.errors import UsageError
from layerscope.importer.walk import Ref, Walk, child_layer, ran
from layerscope.run.inputs import Example, Inputs
from layerscope.run.inputs import make as make_inputs
from layerscope.run.records import LayerRecord
from layerscope.run.runner import run_module, run_on
from layerscope.run.trace import Trace, nbytes, tensors_in
from layerscope.spec.model import ModelSpec

_JOINS = {"add": torch.add, "mul": torch.mul}
_META = torch.device("meta")


def inputs_maker(model: nn.Module, shapes: Sequence[tuple[tuple[int, ...], str]]) -> Callable[[torch.device], Inputs]:
    """The inputs of the recorded run, made as for any Python model (run/inputs.py): the same values
    every time, from a generator of its own, so the global RNG is untouched."""
    examples = [Example(tuple(shape), getattr(torch, dtype)) for shape, dtype in shapes]
    return lambda device: make_inputs(examples, model, device)


def recorder(model: nn.Module, make: Callable[[torch.device], Inputs]) -> Callable[[], Trace]:
    """One traced run of `model`, made the first time a container falls back and kept."""
    kept: list[Trace] = []

    def recorded() -> Trace:
        if not kept:
            kept.append(run_module(model, make, make(_META).nbytes))
        return kept[0]

    return recorded


class _Refused(Exception):
    """What the recorded calls do not determine."""


def recorded_layers(
    module: nn.Module, path: str, args: list[Any], walk: Walk, why: str
) -> tuple[list[dict[str, Any]], Any]:
    """The layers of container `module` (on meta, called on `args`) from its recorded calls."""
    where = f"{path or 'the model'} ({type(module).__name__})"
    assert walk.recorded is not None
    trace = walk.recorded()
    try:
        if trace.failed is not None:
            raise _Refused(f"its calls: the model's recorded run failed: {trace.failed.message}")
        layers, out = _Container(module, path, args, walk, trace).layers()
    except _Refused as e:
        raise UsageError(
            f"{where}: torch.fx cannot trace its forward, and the recorded calls do not determine {e}",
            hint=f"fx: {why}",
        ) from None
    walk.fell_back.append((where, why))
    return layers, out


class _Container:
    """The recorded calls of one container, turned into layers in call order."""

    def __init__(self, module: nn.Module, path: str, args: list[Any], walk: Walk, trace: Trace):
        self.module, self.path, self.walk, self.trace = module, path, walk, trace
        records = trace.records
        calls = [i for i, r in enumerate(records) if r.name == path]
        if not calls:  # a later call of it, like the first, is checked by check_fallback
            raise _Refused("its layers: it was not called in the recorded run")
        self.index = calls[0]
        self.record = records[self.index]
        depth = self.record.depth
        end = next((j for j in range(self.index + 1, len(records)) if records[j].depth <= depth), len(records))
        self.children = [j for j in range(self.index + 1, end) if records[j].depth == depth + 1]
        if len(args) != len(self.record.inputs_from):
            raise _Refused("its inputs: the recorded call took other inputs than the spec's")
        # a producer's tag → (the spec's source for it, its value on meta, the index of a tuple's tensor)
        self.made: dict[str, list[tuple[Any, Any]]] = {}
        for i, (tag, value) in enumerate(zip(self.record.inputs_from, args, strict=True)):
            if tag is not None:
                self.made.setdefault(tag, []).append(("input" if len(args) == 1 else f"input{i}", value))
        self.out: list[dict[str, Any]] = []
        self.last: Any = "input" if len(args) == 1 else None
        self.called: set[str] = set()
        self.tuples: dict[int, Any] = {}  # id of a child's layer → its tuple output

    def layers(self) -> tuple[list[dict[str, Any]], Any]:
        for j in self.children:
            self._call(self.trace.records[j])
        if len(self.record.outputs_from) != 1:
            raise _Refused("its output: it returns other than one tensor")
        source, value = self._take(self.record.outputs_from[0], self.record.output_shapes[0], "its output")
        if source is not self.last:
            raise _Refused("its output: it returns a tensor that is not its last call's output")
        return self.out, value

    def _call(self, record: LayerRecord) -> None:
        name = record.name[len(self.path) + 1 :] if self.path else record.name
        if "." in name:
            raise _Refused(f"how {name} is called: it is a module inside a child")
        if not record.completed:
            raise _Refused(f"{name}: its recorded call did not complete")
        sources, values = [], []
        for tag, shape in zip(record.inputs_from, record.input_shapes, strict=True):
            source, value = self._take(tag, shape, f"{name}'s input")
            sources.append(source)
            values.append(value)
        child = self.module.get_submodule(name)
        if name in self.called:
            layer: dict[str, Any] = {"use": name}
            value = ran(child, values, f"{self.path or 'the model'}: {name}")
        else:
            self.called.add(name)
            layer, value = child_layer(child, f"{self.path}.{name}" if self.path else name, values, self.walk)
            layer = {"name": name, **layer}
        self._append(layer, sources, value)
        outputs = value if isinstance(value, (tuple, list)) else [value]
        for tag, t in zip(record.outputs_from, tensors_in(list(outputs)), strict=False):
            if tag is not None:
                self.made.setdefault(tag, []).append((self.out[-1], t))
        if isinstance(value, (tuple, list)):
            self.tuples[id(self.out[-1])] = value

    def _append(self, layer: dict[str, Any], sources: list[Any], value: Any) -> None:
        if len(sources) > 1 or (sources and sources[0] is not self.last):
            names = [s if isinstance(s, str) else Ref(s) for s in sources]
            layer["from"] = names if len(names) > 1 else names[0]
        self.out.append(layer)
        self.last = layer

    def _take(self, tag: str | None, shape: list[int], what: str) -> tuple[Any, Any]:
        """The source of a tensor of producer `tag` taken with `shape`, reshaped or selected as needed."""
        if tag is None:
            raise _Refused(f"{what}: no layer, join or input made it")
        if tag not in self.made and tag.startswith("join:"):
            self._join(int(tag.partition(":")[2]))
        if tag not in self.made:
            raise _Refused(f"{what}: it comes from {tag}, made outside this container's calls")
        entries = self.made[tag]
        numel = math.prod(shape)
        fits = [(s, v) for s, v in entries if math.prod(list(v.shape)) == numel]
        if len(entries) == 1 and not fits:
            raise _Refused(f"{what}: its producer's {list(entries[0][1].shape)} becomes {shape} by ops of no module")
        if len({id(s) if not isinstance(s, str) else s for s, _ in entries}) != 1 or len(fits) != 1:
            raise _Refused(f"{what}: which of its producer's tensors it takes")
        source, value = fits[0]
        if isinstance(source, dict) and len(entries) > 1:  # one tensor of a child's tuple output
            index = next(i for i, (_, v) in enumerate(entries) if v is value)
            top = self._top_index(source, index)
            self._append({"op": "select", "index": top}, [source], value)
            source = self.out[-1]
        if list(value.shape) != shape:  # a view or reshape in Python between the two
            value = ran(lambda t: t.reshape(shape), [value], f"{self.path or 'the model'}: reshape")
            self._append({"op": "reshape", "shape": list(shape)}, [source], value)
            self.walk.baked.append((self.path, self.out[-1], ["the sizes of the recorded run"]))
            source = self.out[-1]
        return source, value

    def _top_index(self, source: dict[str, Any], index: int) -> int:
        """The index in a child's tuple output of its `index`-th tensor: a tensor of the tuple itself."""
        flat = 0
        for top, element in enumerate(self.tuples.get(id(source), ())):
            if isinstance(element, Tensor):
                if flat == index:
                    return top
                flat += 1
            else:
                flat += len(tensors_in(element))
        raise _Refused(f"{source.get('name', 'a child')}'s output: a tensor inside a nested tuple")

    def _join(self, number: int) -> None:
        join = self.trace.joins[number]
        if join.within != self.path:
            raise _Refused(f"join:{number}: a {join.op} inside another module")
        if join.op not in (*_JOINS, "cat"):
            raise _Refused(f"a {join.op} of several layers' outputs: the spec has no such op")
        taken = [
            self._take(tag, shape, f"the {join.op}")
            for tag, shape in zip(join.inputs_from, join.input_shapes, strict=True)
        ]
        values = [v for _, v in taken]
        where = f"{self.path or 'the model'}: {join.op}"
        if join.op == "cat":
            differ = [d for d, (a, b) in enumerate(zip(values[0].shape, join.output_shapes[0], strict=True)) if a != b]
            if len(differ) != 1:
                raise _Refused("the dim of a cat")
            value = ran(torch.cat, [values], where, {"dim": differ[0]})
            layer: dict[str, Any] = {"op": "cat", "dim": differ[0]}
        else:
            value = values[0]
            for v in values[1:]:
                value = ran(_JOINS[join.op], [value, v], where)
            layer = {"op": join.op}
        if list(value.shape) != join.output_shapes[0]:
            raise _Refused(f"a {join.op}: its output's shape")
        self._append(layer, [s for s, _ in taken], value)
        self.made[f"join:{number}"] = [(self.out[-1], value)]


def check_fallback(spec: ModelSpec, model: nn.Module, walk: Walk, make: Callable[[torch.device], Inputs]) -> None:
    """The spec's run against the model's recorded run: every layer call's name and output shapes, the
    FLOPs, and the output on the same inputs with the model's own weights. A value-changing op
    between layers (`x * 2`), which the recorded calls do not show, makes them differ."""
    assert walk.recorded is not None
    python = walk.recorded()
    containers = ", ".join(where for where, _ in walk.fell_back)
    built = build(spec, spec.inputs, device="meta")
    ours = run_on(built.model, _META, make(_META))

    def calls(trace: Trace) -> list[tuple[str, list[list[int]]]]:
        return [(r.name, r.output_shapes) for r in trace.records if r.name and not r.functional]

    problem = None
    if calls(python) != calls(ours):
        pairs = zip(calls(python), calls(ours), strict=False)
        first = next(((a, b) for a, b in pairs if a != b), None)
        problem = f"its layer calls ({first[0][0]} {first[0][1]} vs {first[1][0]} {first[1][1]})" if first else None
        problem = problem or f"its layer calls ({len(calls(python))} recorded, {len(calls(ours))} in the spec)"
    elif python.flops != ours.flops:
        problem = f"its FLOPs ({python.flops} recorded, {ours.flops} in the spec)"
    elif python.device != "cpu":
        problem = "its values: the model was too large to run on the CPU, so the spec could not be checked"
    else:
        problem = _values_differ(spec, model, python, make)
    if problem is not None:
        raise UsageError(
            f"{containers}: torch.fx cannot trace its forward, and the recorded calls do not determine {problem}",
            hint="what no module does between its calls (x * 2, log_softmax, a loop) is not recorded: make fx trace it",
        )


def _values_differ(
    spec: ModelSpec, model: nn.Module, python: Trace, make: Callable[[torch.device], Inputs]
) -> str | None:
    limits.check_cpu_bytes(2 * nbytes([*model.parameters(), *model.buffers()]))  # the model's and the spec's
    real = build(spec, spec.inputs, device="cpu").model.eval()
    real.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        output = real(*make(torch.device("cpu")).args)
    expected = python.output
    if not isinstance(expected, Tensor) or expected.shape != output.shape:
        return "its output (not one tensor of the spec's shape)"
    if not torch.allclose(output, expected, rtol=1e-4, atol=1e-5):
        return f"its output values (they differ by up to {float((output - expected).abs().max()):.3g})"
    return None
