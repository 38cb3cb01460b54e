"""Build stage, what a build makes: SpecModule (a spec's container as an nn.Module) and Built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from layerscope.errors import Source


class SpecModule(nn.Module):
    """A model or nested Sequential from a spec: runs its layers in file order along `from:` edges."""

    def __init__(self, type_name: str, input_names: Sequence[str], output: str | None = None):
        super().__init__()
        self.type_name = type_name  # what torch's repr and layerscope's tables call it (see _get_name)
        self.input_names = tuple(input_names)
        self.output = output  # the name whose value is returned, when not the last layer's
        self.nodes: list[tuple[str, tuple[str, ...]]] = []
        # a `use:` without a name of its own → the path of the module it calls again, registered once
        self.calls: dict[str, str] = {}

    def add_node(self, name: str, module: nn.Module, inputs: Sequence[str]) -> None:
        """Append a layer; registering a module under a second name shares its weights."""
        self.add_module(name, module)
        self.nodes.append((name, tuple(inputs)))

    def add_call(self, name: str, path: str, inputs: Sequence[str]) -> None:
        """Append a call of the submodule at `path` again, as `name`, without registering a second name."""
        self.calls[name] = path
        self.nodes.append((name, tuple(inputs)))

    def callee(self, name: str) -> nn.Module:
        """The module the layer called `name` runs."""
        return self.get_submodule(self.calls.get(name, name))

    def add_tensor(self, name: str, value: Tensor, persistent: bool = True) -> None:
        """Append a free tensor (`param:` / `buffer:`): a node that reads nothing and yields `value`."""
        if isinstance(value, nn.Parameter):
            self.register_parameter(name, value)
        else:
            self.register_buffer(name, value, persistent=persistent)
        self.nodes.append((name, ()))

    def forward(self, *args: Any) -> Any:
        """Run the layers in order, each on the outputs its `from:` names, else on the previous one's."""
        if len(args) != len(self.input_names):
            raise TypeError(
                f"{self.type_name} takes {len(self.input_names)} input(s) ({', '.join(self.input_names)}), got {len(args)}"
            )
        env = inputs_by_name(self.input_names, args)
        out = args[0]
        for name, inputs in self.nodes:
            xs = [env[i] for i in inputs] if inputs else [out]
            node = self.get_submodule(self.calls[name]) if name in self.calls else getattr(self, name)
            out = node if isinstance(node, Tensor) else node(*xs)  # a free tensor is its own output
            env[name] = out
        return out if self.output is None else env[self.output]

    def _get_name(self) -> str:  # torch's hook for the name its repr prints: the spec's type, not SpecModule
        return self.type_name


def inputs_by_name(names: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    """What `from:` can name in a container: its inputs by name, and `input` for the first."""
    return {"input": values[0], **dict(zip(names, values, strict=False))}


@dataclass
class Built:
    """A built model, the example inputs it was built for, and where each layer was written."""

    model: nn.Module
    inputs: tuple[Tensor, ...]
    # qualified module name → spec position; `name#k` → where the k-th call again (`use:`) of `name` was
    sources: dict[str, Source] = field(default_factory=dict)
    stopped_at: str | None = None  # the layer whose forward failed while building
    skipped: list[str] = field(default_factory=list)  # spec layers after it, never built
    # id of each torch module built → (op, the arguments it was constructed with, inferred ones included)
    recipes: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        """Where the model was built: its example inputs' device (a build always has inputs)."""
        return self.inputs[0].device
