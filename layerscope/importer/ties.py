"""Importer, shared parameters: a parameter the model holds under two names of two modules
(`head.weight = emb.weight`) written as `tie:` on the later layer, and the check that the built spec
shares the very same names the model does.

Sharing by one module registered twice (`nn.Sequential(fc, relu, fc)`) is a `use:` already; only
a parameter of one module set on another is a tie. The tying layer must be one of the document's
own layers (not inside a block or a `repeat:`, which every use or repeat shares): otherwise the
import is refused naming it. The tie points at the sharing name built first.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from layerscope.errors import UsageError
from layerscope.run.tensors import param_names


def shared_names(module: nn.Module) -> list[list[str]]:
    """The names of each parameter `module` holds under more than one name, in registration order."""
    return [names for names in param_names(module).values() if len(names) > 1]


def write_ties(module: nn.Module, built: nn.Module, layers: list[dict[str, Any]], leaves: list[Any]) -> None:
    """Add `tie: {param: earlier.name}` to the layer of each parameter `module` shares with another
    module. `built` is the spec built without ties (its build order); `leaves` the walk's (layer,
    module path) of each torch.nn layer; `layers` the document's top-level list."""
    order = {key: i for i, (key, _) in enumerate(built.named_parameters(remove_duplicate=False))}
    path_of = {id(layer): path for layer, path in leaves}
    for names in shared_names(module):
        names = sorted(names, key=lambda n: order.get(n, len(order)))
        target = names[0]
        first_owner = module.get_submodule(target.rpartition(".")[0])
        for name in names[1:]:
            owner, _, param = name.rpartition(".")
            if module.get_submodule(owner) is first_owner:
                continue  # one module registered twice: a use:
            layer = next((x for x in _document_layers(layers) if path_of.get(id(x)) == owner), None)
            if layer is None:
                raise UsageError(
                    f"{name} is the very tensor of {target}, and the spec cannot tie it there",
                    hint="a tie: is written on a layer of the model or of an nn.Sequential in it, "
                    "not inside a block or a repeat:",
                )
            layer.setdefault("tie", {})[param] = target


def _document_layers(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The layers of the document's own lists (nested `layers:` too), not a block's."""
    found = []
    for layer in layers:
        found.append(layer)
        if isinstance(layer.get("layers"), list):
            found.extend(_document_layers(layer["layers"]))
    return found


def check_ties(module: nn.Module, built: nn.Module) -> None:
    """The built spec shares a parameter under the very names the model does, so counts the same."""
    wanted = sorted(map(sorted, shared_names(module)))
    got = sorted(map(sorted, shared_names(built)))
    if wanted != got:
        lost = next((names for names in wanted if names not in got), None) or got[0]
        raise UsageError(
            f"the spec would not share {' and '.join(lost)} as the model does "
            f"({_unique(built)} parameters against the model's {_unique(module)})",
            hint="a tie the importer cannot write",
        )


def _unique(module: nn.Module) -> str:
    return f"{sum(p.numel() for p in module.parameters()):,}"
