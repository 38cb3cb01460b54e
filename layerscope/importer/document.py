"""Importer, the whole: a Python nn.Module → the text of a spec that builds the same model, checked.

The module is read on a copy on the meta device (run/shadow.py: the user's module is not touched,
nothing is allocated), in eval mode, for the given input shapes. The YAML is written by
yaml.safe_dump from plain data, so every name and value re-reads as itself; then it is parsed and
built again, and its parameter and buffer names and shapes must be the module's, and it must share
a parameter under the names the module does (importer/ties.py), or the import fails naming the first
module whose differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import yaml
from torch import nn

from layerscope.builder.builder import build
from layerscope.errors import UsageError
from layerscope.importer.fallback import check_fallback, inputs_maker, recorder
from layerscope.importer.fold import fold_repeats, make_blocks, name_layers
from layerscope.importer.ties import check_ties, shared_names, write_ties
from layerscope.importer.values import free_buffers
from layerscope.importer.walk import Walk, is_layer, walk_module
from layerscope.run.shadow import shadow
from layerscope.spec.model import ModelSpec, parse_model
from layerscope.spec.shapes import format_shapes
from layerscope.spec.source import load_documents

Input = tuple[tuple[int, ...], str]  # a shape and a dtype name


def to_spec(
    model: nn.Module, inputs: Sequence[Input], name: str, description: str = "", notes: list[str] | None = None
) -> str:
    """The spec of `model` called on inputs of these shapes and dtypes, as YAML text. A container
    torch.fx cannot trace is written from its recorded calls (importer/fallback.py), checked against
    the model's run, and said in `notes`."""
    if not inputs:
        raise UsageError(
            "importing a model needs the shapes of its inputs", hint="give --input, e.g. --input 1x3x224x224"
        )
    if is_layer(model):
        raise UsageError(
            f"the model is a single torch.nn.{type(model).__name__}",
            hint="write it as one layer: the spec's names nest under the model",
        )
    copy = shadow(model, torch.device("meta"))
    if copy.module is None:
        raise UsageError(f"cannot copy the model to read it: {copy.problem}")
    module = copy.module.eval()
    args = [torch.empty(shape, dtype=getattr(torch, dtype), device="meta") for shape, dtype in inputs]
    make = inputs_maker(model, inputs)
    walk = Walk(recorded=recorder(model, make), free_buffers=free_buffers(model))
    with torch.no_grad():
        layers, _ = walk_module(module, "", args, walk)
        if walk.baked:  # a size read in the forward, written as a number: keep every in-dim (importer/sizes.py)
            walk = Walk(recorded=walk.recorded, free_buffers=walk.free_buffers, keep_in_dims=True)
            layers, _ = walk_module(module, "", args, walk)
    names: dict[int, str] = {}
    name_layers(layers, type(module) is nn.Sequential or not any("name" in x for x in layers), names)
    baked = _baked(walk, names, inputs)
    blocks = make_blocks(walk.uses)
    fold_repeats(layers, blocks)
    document: dict[str, Any] = {"name": name}
    if description:
        document["description"] = description
    document["input"] = _inputs(inputs)
    if blocks:
        document["blocks"] = blocks
    document["layers"] = layers
    text = _dumped(document)
    if shared_names(module):  # a parameter of one module set on another: tie: on the later layer
        untied = parse_model(load_documents(text, f"<{name} imported>")[0], default_name=name)
        write_ties(module, build(untied, untied.inputs, device="meta").model, layers, walk.leaves)
        text = _dumped(document)
    spec = check(text, module, name)
    if walk.fell_back:
        check_fallback(spec, model, walk, make)
        for where, why in walk.fell_back:
            (notes if notes is not None else []).append(
                f"{where} was written from its recorded calls: torch.fx cannot trace its forward: {why}"
            )
    if notes is not None:
        notes.extend(baked)
    return text


def _dumped(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=False)


def _baked(walk: Walk, names: dict[int, str], inputs: Sequence[Input]) -> list[str]:
    """A note for each layer that holds a size read in the forward (importer/sizes.py)."""
    given = format_shapes([shape for shape, _ in inputs])
    notes = []
    for path, layer, held in walk.baked:
        where = f"{path}: " if path else ""
        arguments = " ".join(f"{k} {v}" for k, v in layer.items() if k not in ("op", "name", "from"))
        notes.append(
            f"{where}{names.get(id(layer), layer['op'])}: {arguments} holds {' and '.join(held)};"
            f" the spec is for input {given}, and keeps every layer's in-dim so another input fails"
        )
    return notes


class _Dumper(yaml.SafeDumper):
    """yaml.safe_dump's representation; a mapping without mappings inside (a layer) on one line."""


def _mapping(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    nested = any(
        isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict) for x in v)) for v in data.values()
    )
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=not nested)


_Dumper.add_representer(dict, _mapping)


def _inputs(inputs: Sequence[Input]) -> Any:
    made = []
    for i, (shape, dtype) in enumerate(inputs):
        one: dict[str, Any] = {"name": f"input{i}"} if len(inputs) > 1 else {}
        one["shape"] = list(shape)
        if dtype != "float32":
            one["dtype"] = dtype
        made.append(one)
    return made[0] if len(made) == 1 else made


def check(text: str, module: nn.Module, name: str) -> ModelSpec:
    """Build the spec `text` on meta; its state_dict's names and shapes must be `module`'s."""
    documents = load_documents(text, f"<{name} imported>")
    spec = parse_model(documents[0], default_name=name)
    built = build(spec, spec.inputs, device="meta")
    if built.stopped_at is not None:
        raise UsageError(f"the imported spec does not accept its input at {built.stopped_at}")
    wanted = {k: list(v.shape) for k, v in module.state_dict(keep_vars=True).items()}
    got = {k: list(v.shape) for k, v in built.model.state_dict(keep_vars=True).items()}
    for key in [*wanted, *got]:
        if wanted.get(key) != got.get(key):
            owner = key.rpartition(".")[0] or "the model"
            raise UsageError(
                f"{owner}: the spec would hold {key} as {got.get(key)}, the model holds {wanted.get(key)}",
                hint="its constructor arguments cannot be read off its attributes",
            )
    check_ties(module, built.model)
    return spec
