"""Build stage, the spec as Python: a built spec → the source of a standalone nn.Module (`layerscope export --to python`).

The source is written from the built model, not the YAML: every argument is the one the module was
constructed with, in-dims the builder inferred included, so the file needs nothing but torch. Each
container becomes a class (blocks keep their names; identical ones share a class), a chain of
modules an nn.Sequential, functional ops calls of the few small functions they need (copied from
ops.py), `use:` the same module under a second name, and `tie:` an assignment after construction.
Parameter names are the spec's, so a state_dict moves between the two.

A spec is untrusted, so no template is ever filled with its text: the file is assembled from
fixed fragments, every spec value enters it through `literal()` (repr of plain data, nothing
else), and every spec name through `_Names` (a valid identifier that shadows nothing the file
uses) or, for module names that are not safe attributes, as a repr'd string key. Importing the
file runs nothing but definitions; limits.EXPORT_BYTES caps its size.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import math
import re
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from layerscope import limits
from layerscope.builder.modules import Built, SpecModule
from layerscope.errors import UsageError
from layerscope.run.tensors import param_names
from layerscope.spec.layer_spec import MODULE_ATTRS
from layerscope.spec.model import InputSpec, ModelSpec
from layerscope.spec.ops import FUNCTIONAL_OPS, LAYERSCOPE_MODULES, FunctionalOp, free_tensor

HEADER = '''"""A model exported by layerscope. Needs only torch.

    model = make_model()
    output = model(*example_inputs())
"""'''

IMPORTS = """from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn"""

# every name the file defines or imports at module level: no spec name may become one of these
GLOBALS = frozenset(
    {"annotations", "Sequence", "Any", "torch", "F", "Tensor", "nn", "make_model", "example_inputs", "self"}
    | {"free_tensor"}
    | set(FUNCTIONAL_OPS)
    | set(LAYERSCOPE_MODULES)
)


def to_python(spec: ModelSpec, built: Built, source: str) -> str:
    """The module file: helpers, one class per distinct container, make_model and example_inputs."""
    writer = _Writer(built.recipes)
    root = writer.container_class(built.model, spec.name, extra_init=_ties(built.model))
    parts = [HEADER, f"# model: {spec.name!r}\n# from: {source!r}", IMPORTS]
    parts += [textwrap.dedent(inspect.getsource(FUNCTIONAL_OPS[op])) for op in sorted(writer.functions)]
    parts += [textwrap.dedent(inspect.getsource(LAYERSCOPE_MODULES[op])) for op in sorted(writer.own_modules)]
    if writer.free_tensors:
        parts.append(textwrap.dedent(inspect.getsource(free_tensor)))
    parts += list(writer.classes.values())
    parts.append(_make_functions(root, spec.inputs))
    return "\n\n\n".join(p.strip("\n") for p in parts) + "\n"


def literal(value: Any, other: Callable[[Any], str] | None = None) -> str:
    """Python source for a plain value — repr of numbers, strings, None, and containers of them —
    anything else written by `other` (the modules an argument may hold), else an error."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v, other) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v, other) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k, other)}: {literal(v, other)}" for k, v in value.items()) + "}"
    if isinstance(value, torch.dtype):
        name = str(value).removeprefix("torch.")
        if getattr(torch, name, None) is value:
            return f"torch.{name}"
    if other is not None and isinstance(value, nn.Module):
        return other(value)
    raise UsageError(
        f"cannot write an argument of type {type(value).__name__} as Python", hint="export supports plain values"
    )


def identifier_for(name: str) -> str:
    """`name` made a Python identifier: ASCII letters, digits and _, starting with a letter (a leading
    `__` would be name-mangled inside a class), and short enough to read."""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", name).lstrip("_")[:60]
    return base if base and not base[0].isdigit() else f"n_{base}"


class _Names:
    """Unique identifiers for spec names within one scope, none of them a keyword or in `taken`."""

    def __init__(self, taken: Iterable[str]):
        self.taken = set(taken)
        self.given: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        """The identifier of `name` in this scope: the same each time it is asked for."""
        if name not in self.given:
            self.given[name] = self.fresh(name)
        return self.given[name]

    def fresh(self, name: str) -> str:
        """A new identifier like `name`, unlike every other in the scope."""
        base = identifier_for(name)
        candidate, n = base, 1
        while keyword.iskeyword(candidate) or candidate in self.taken:
            n += 1
            candidate = f"{base}_{n}"
        self.taken.add(candidate)
        return candidate


class _Writer:
    def __init__(self, recipes: dict[int, tuple[str, dict[str, Any]]]):
        self.recipes = recipes
        self.class_names = _Names(GLOBALS | set(dir(builtins)))  # classes are globals: the helpers use builtins
        self.classes: dict[str, str] = {}  # class name → source, in the order they are needed
        self.by_body: dict[tuple[str, ...], str] = {}  # a class's lines after its first → its name
        self.functions: set[str] = set()
        self.own_modules: set[str] = set()
        self.free_tensors = False  # whether a container holds a `param:` or `buffer:`
        self.size = 0
        self.max_size = limits.EXPORT_BYTES.value  # read once: the check runs for every line

    def expression(self, module: nn.Module, attribute: str) -> str:
        """Python that constructs `module`."""
        if isinstance(module, SpecModule):
            if _is_chain(module):
                items = ", ".join(self.expression(module.callee(n), n) for n, _ in module.nodes)
                return f"nn.Sequential({items})"
            return f"{self.container_class(module, _class_name(module.type_name, attribute))}()"
        op, arguments = self.recipes[id(module)]
        if op in LAYERSCOPE_MODULES:
            self.own_modules.add(op)
            call = op
        else:
            cls = getattr(nn, op, None)
            if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
                raise UsageError(f"cannot write {op!r} as a torch.nn class", hint="export supports torch.nn layers")
            call = f"nn.{op}"
        return f"{call}({_arguments(arguments, self.value)})"

    def value(self, value: Any) -> str:
        """Python for an argument: a plain value, or modules (and containers of them) constructed."""
        return literal(value, lambda module: self.expression(module, ""))

    def container_class(self, module: SpecModule, name: str, extra_init: Iterable[str] = ()) -> str:
        """Write the class of a container (once per distinct body) and return its name."""
        init, forward, first_name = [], [], {}
        local = _Names(GLOBALS)
        params = [local(n) for n in module.input_names]
        env = {"input": params[0], **{n: local(n) for n in module.input_names}}
        out = params[0]
        for node, inputs in module.nodes:
            child = module.callee(node) if node in module.calls else getattr(module, node)
            args = ", ".join(env[i] for i in inputs) if inputs else out
            target = local(f"x_{node}")
            if isinstance(child, Tensor):  # `param:` / `buffer:`: made in __init__, read in forward
                init.append(self._free_tensor(node, child))
                forward.append(
                    f"{target} = {attribute_of(node) if _is_attribute(node) else f'getattr(self, {node!r})'}"
                )
                self._charge(init[-1])
            elif isinstance(child, FunctionalOp):
                self.functions.add(child.op)
                kwargs = "".join(f", {k}={v}" for k, v in _keywords(child.kwargs, self.value))
                forward.append(f"{target} = {FUNCTIONAL_OPS[child.op].__name__}({args}{kwargs})")
            elif node in module.calls:  # `use:` without a name of its own: the module, called again
                path = module.calls[node]
                callee = f"self.get_submodule({path!r})" if "." in path else attribute_of(path)
                forward.append(f"{target} = {callee}({args})")
            else:
                if id(child) in first_name:  # `use:` under a second name — the same module, its weights shared
                    init.append(_set(node, attribute_of(first_name[id(child)])))
                else:
                    first_name[id(child)] = node
                    init.append(_set(node, self.expression(child, node)))
                forward.append(f"{target} = {attribute_of(node)}({args})")
                self._charge(init[-1])
            self._charge(forward[-1])
            env[node] = out = target
        result = env[module.output] if module.output is not None else out
        lines = (
            "    def __init__(self) -> None:",
            "        super().__init__()",
            *(f"        {line}" for line in (*init, *extra_init)),
            "",
            f"    def forward(self, {', '.join(params)}) -> Any:",
            *(f"        {line}" for line in forward),
            f"        return {result}",
        )
        if lines in self.by_body:
            return self.by_body[lines]
        unique = self.class_names.fresh(name)
        self.by_body[lines] = unique
        comment = f"  # {name!r} in the spec" if unique != name else ""
        self.classes[unique] = "\n".join((f"class {unique}(nn.Module):{comment}", *lines))
        return unique

    def _free_tensor(self, node: str, tensor: Tensor) -> str:
        """The line of __init__ that registers the free tensor `node`, made as the builder made it."""
        self.free_tensors = True
        kind, recipe = self.recipes[id(tensor)]
        arguments = dict(recipe)
        flag = arguments.pop("requires_grad" if kind == "param" else "persistent")
        make = f"free_tensor({_arguments(arguments, self.value)})"
        if kind == "param":
            return f"self.register_parameter({node!r}, nn.Parameter({make}, requires_grad={literal(flag)}))"
        return f"self.register_buffer({node!r}, {make}, persistent={literal(flag)})"

    def _charge(self, line: str) -> None:
        self.size += len(line) + 9  # indent and newline
        if self.size > self.max_size:
            raise limits.EXPORT_BYTES.error(f"the exported file would pass {self.max_size:,} bytes")


def _keywords(arguments: dict[str, Any], value: Any) -> list[tuple[str, str]]:
    for key in arguments:
        if not (isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)):
            raise UsageError(f"cannot write the argument name {key!r} as Python", hint="arguments are identifiers")
    return [(k, value(v)) for k, v in arguments.items()]


def _arguments(arguments: dict[str, Any], value: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in _keywords(arguments, value))


def _is_chain(module: SpecModule) -> bool:
    """A container nn.Sequential can stand for: modules only, each reading the one before."""
    return (
        module.type_name == "Sequential"
        and module.output is None
        and len(module.input_names) == 1
        and not module.calls
        and all(not inputs and not isinstance(getattr(module, n), (FunctionalOp, Tensor)) for n, inputs in module.nodes)
        and len({id(module.get_submodule(n)) for n, _ in module.nodes}) == len(module.nodes)
        and [n for n, _ in module.nodes] == [str(i) for i in range(len(module.nodes))]  # nn.Sequential's names
    )


def _class_name(type_name: str, attribute: str) -> str:
    if type_name != "Sequential":
        return type_name
    return "".join(part.capitalize() for part in re.split(r"_+", attribute) if part) or "Block"


def _is_attribute(node: str) -> bool:
    """Whether `self.<node>` names the child: an identifier that no nn.Module attribute shadows."""
    return node.isidentifier() and not keyword.iskeyword(node) and not node.startswith("_") and node not in MODULE_ATTRS


def attribute_of(node: str) -> str:
    """How the class's code names its child `node`."""
    return f"self.{node}" if _is_attribute(node) else f"self._modules[{node!r}]"


def _set(node: str, expression: str) -> str:
    """The line of __init__ that makes `expression` the child `node`."""
    return f"self.{node} = {expression}" if _is_attribute(node) else f"self.add_module({node!r}, {expression})"


def _ties(model: nn.Module) -> list[str]:
    """`tie:`: each parameter that is another module's, assigned from the first name it has."""
    lines = []
    for names in param_names(model).values():
        first_owner = model.get_submodule(names[0].rpartition(".")[0])
        for name in names[1:]:
            owner, _, attr = name.rpartition(".")
            if model.get_submodule(owner) is not first_owner:
                lines.append(f"setattr(self.get_submodule({owner!r}), {attr!r}, self.get_parameter({names[0]!r}))")
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
        shape = literal(tuple(int(s) for s in spec.shape))
        dtype = literal(getattr(torch, spec.dtype, spec.dtype))
        if spec.dtype.startswith(("float", "bfloat")):
            lines.append(f"        torch.randn({shape}, dtype={dtype}, device=device),")
        else:
            low, high = spec.value_range if spec.value_range else (0, 2)
            lines.append(
                f"        torch.randint({literal(low)}, {literal(high)}, {shape}, dtype={dtype}, device=device),"
            )
    lines.append("    )")
    return "\n".join(lines)
