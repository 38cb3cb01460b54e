"""Build stage, the spec as Python: a built spec → the source of a standalone nn.Module (`layerscope export --to python`).

The source is written from the built model, not the YAML: every argument is the one the module was
constructed with, in-dims the builder inferred included, so the file needs nothing but torch. Each
container becomes a class (blocks keep their names; identical ones share a class), a chain of
modules an nn.Sequential, functional ops calls of the few small functions they need (copied from
ops.py), `use:` the same module under a second name, and `tie:` an assignment after construction.
Parameter names are the spec's, so a state_dict moves between the two.
"""

from __future__ import annotations

import inspect
import keyword
import re
import textwrap
from typing import Any

from torch import nn

from layerscope.builder.modules import Built, SpecModule
from layerscope.run.trace import param_names
from layerscope.spec.model import InputSpec, ModelSpec
from layerscope.spec.ops import FUNCTIONAL_OPS, LAYERSCOPE_MODULES, FunctionalOp

HEADER = '''"""{name}, exported by layerscope from {source}. Needs only torch.

    model = make_model()
    output = model(*example_inputs())
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
'''


def to_python(spec: ModelSpec, built: Built, source: str) -> str:
    """The module file: helpers, one class per distinct container, make_model and example_inputs."""
    writer = _Writer(built.recipes)
    root = writer.container_class(built.model, spec.name)
    ties = _ties(built.model)
    if ties:  # tied parameters are assigned once everything exists, in the model's own __init__
        body = writer.classes[root]
        at = body.index("\n\n    def forward(")
        writer.classes[root] = body[:at] + "".join(f"\n        {t}" for t in ties) + body[at:]
    parts = [HEADER.format(name=spec.name, source=source)]
    parts += [textwrap.dedent(inspect.getsource(FUNCTIONAL_OPS[op])) for op in sorted(writer.functions)]
    parts += [textwrap.dedent(inspect.getsource(LAYERSCOPE_MODULES[op])) for op in sorted(writer.own_modules)]
    parts += list(writer.classes.values())
    parts.append(_make_functions(root, spec.inputs))
    return "\n\n\n".join(p.strip("\n") for p in parts) + "\n"


class _Writer:
    def __init__(self, recipes: dict[int, tuple[str, dict[str, Any]]]):
        self.recipes = recipes
        self.classes: dict[str, str] = {}  # class name → source, in the order they are needed
        self.by_body: dict[str, str] = {}  # a class body (named X) → the name it was given
        self.functions: set[str] = set()
        self.own_modules: set[str] = set()

    def expression(self, module: nn.Module, attribute: str) -> str:
        """Python that constructs `module`."""
        if isinstance(module, SpecModule):
            if _is_chain(module):
                items = ", ".join(self.expression(module.get_submodule(n), n) for n, _ in module.nodes)
                return f"nn.Sequential({items})"
            return f"{self.container_class(module, _class_name(module.type_name, attribute))}()"
        op, arguments = self.recipes[id(module)]
        if op in LAYERSCOPE_MODULES:
            self.own_modules.add(op)
            call = op
        else:
            call = f"nn.{op}"
        return f"{call}({', '.join(f'{k}={self.value(v)}' for k, v in arguments.items())})"

    def value(self, value: Any) -> str:
        if isinstance(value, nn.Module):
            return self.expression(value, "")
        if isinstance(value, tuple):
            return "(" + ", ".join(self.value(v) for v in value) + ("," if len(value) == 1 else "") + ")"
        return repr(value)

    def container_class(self, module: SpecModule, name: str) -> str:
        """Write the class of a container (once per distinct body) and return its name."""
        init, forward, first_name = [], [], {}
        params = [_variable(n) for n in module.input_names]
        env = {"input": params[0], **{n: _variable(n) for n in module.input_names}}
        out = params[0]
        for node, inputs in module.nodes:
            child = module.get_submodule(node)
            args = ", ".join(env[i] for i in inputs) if inputs else out
            target = f"x_{node}"
            if isinstance(child, FunctionalOp):
                self.functions.add(child.op)
                kwargs = "".join(f", {k}={self.value(v)}" for k, v in child.kwargs.items())
                forward.append(f"{target} = {child.op}({args}{kwargs})")
            else:
                if id(child) in first_name:  # `use:` — the same module again, its weights shared
                    init.append(_set(node, attribute_of(first_name[id(child)])))
                else:
                    first_name[id(child)] = node
                    init.append(_set(node, self.expression(child, node)))
                forward.append(f"{target} = {attribute_of(node)}({args})")
            env[node] = out = target
        result = env[module.output] if module.output is not None else out
        body = "\n".join(
            [
                "class {name}(nn.Module):",
                "    def __init__(self) -> None:",
                "        super().__init__()",
                *(f"        {line}" for line in init),
                "",
                f"    def forward(self, {', '.join(params)}) -> Any:",
                *(f"        {line}" for line in forward),
                f"        return {result}",
            ]
        )
        if body in self.by_body:
            return self.by_body[body]
        unique, n = name, 1
        while unique in self.classes:
            n += 1
            unique = f"{name}_{n}"
        self.by_body[body] = unique
        self.classes[unique] = body.format(name=unique)
        return unique


def _is_chain(module: SpecModule) -> bool:
    """A container nn.Sequential can stand for: modules only, each reading the one before."""
    return (
        module.type_name == "Sequential"
        and module.output is None
        and len(module.input_names) == 1
        and all(not inputs and not isinstance(module.get_submodule(n), FunctionalOp) for n, inputs in module.nodes)
        and len({id(module.get_submodule(n)) for n, _ in module.nodes}) == len(module.nodes)
        and [n for n, _ in module.nodes] == [str(i) for i in range(len(module.nodes))]  # nn.Sequential's names
    )


def _class_name(type_name: str, attribute: str) -> str:
    if type_name != "Sequential":
        return type_name
    return "".join(part.capitalize() for part in re.split(r"_+", attribute) if part) or "Block"


def _variable(name: str) -> str:
    return name if name.isidentifier() and not keyword.iskeyword(name) else f"x_{name}"


def attribute_of(node: str) -> str:
    """How the class's code names its child `node`."""
    return f"self.{node}" if node.isidentifier() and not keyword.iskeyword(node) else f'self._modules["{node}"]'


def _set(node: str, expression: str) -> str:
    """The line of __init__ that makes `expression` the child `node`."""
    if node.isidentifier() and not keyword.iskeyword(node):
        return f"self.{node} = {expression}"
    return f'self.add_module("{node}", {expression})'


def _ties(model: nn.Module) -> list[str]:
    """`tie:`: each parameter that is another module's, assigned from the first name it has."""
    lines = []
    for names in param_names(model).values():
        first_owner = model.get_submodule(names[0].rpartition(".")[0])
        for name in names[1:]:
            owner, _, attr = name.rpartition(".")
            if model.get_submodule(owner) is not first_owner:
                lines.append(f'self.get_submodule("{owner}").{attr} = self.get_parameter("{names[0]}")')
    return lines


def _make_functions(root: str, inputs: tuple[InputSpec, ...]) -> str:
    lines = [
        f"def make_model() -> {root}:",
        f"    return {root}()",
        "",
        "",
        "def example_inputs(device: Any = None) -> tuple[Tensor, ...]:",
        '    """Inputs of the shapes the spec declares (token ids within its range)."""',
        "    return (",
    ]
    for spec in inputs:
        shape = tuple(spec.shape)
        if spec.dtype.startswith(("float", "bfloat")):
            lines.append(f"        torch.randn({shape!r}, dtype=torch.{spec.dtype}, device=device),")
        else:
            high = spec.value_range[1] if spec.value_range else 2
            low = spec.value_range[0] if spec.value_range else 0
            lines.append(f"        torch.randint({low}, {high}, {shape!r}, dtype=torch.{spec.dtype}, device=device),")
    lines.append("    )")
    return "\n".join(lines)
