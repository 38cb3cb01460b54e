"""Build stage, weight sharing: the modules built so far by name, which `use:` and `tie:` refer to."""

from __future__ import annotations

from torch import Tensor, nn

from layerscope.errors import Source, SpecError, did_you_mean
from layerscope.spec.layer_spec import LayerSpec


class Registry:
    """Every module built so far under its qualified name; `use:` reuses one, `tie:` one's parameter."""

    def __init__(self) -> None:
        self.modules: dict[str, nn.Module] = {}
        self.paths: dict[str, str] = {}  # a `use:` registered under no name of its own → where its module is
        self.tensors: dict[str, Tensor] = {}  # the free tensors (`param:`, `buffer:`) by qualified name

    def add(self, qualname: str, module: nn.Module, path: str | None = None) -> None:
        """Record `module`, built for the layer at `qualname` (or registered at `path`, for a call again)."""
        self.modules[qualname] = module
        if path is not None:
            self.paths[qualname] = path

    def add_tensor(self, qualname: str, tensor: Tensor) -> None:
        """Record the free tensor of the `param:` or `buffer:` layer at `qualname`."""
        self.tensors[qualname] = tensor

    def shared(self, layer: LayerSpec, prefix: str) -> tuple[nn.Module, str | None]:
        """The module a `use:` layer calls again (by name in the current block, else from the model's
        top), and its path from the current block, or None when it is registered outside it."""
        assert layer.use is not None
        for candidate in (prefix + layer.use, layer.use):
            if candidate in self.modules:
                path = self.paths.get(candidate, candidate)
                return self.modules[candidate], (path[len(prefix) :] if path.startswith(prefix) else None)
            if candidate in self.tensors:
                raise SpecError(
                    f"use: {layer.use!r} is a tensor (param: or buffer:), not a layer to call",
                    source=layer.source,
                    hint=f"name it in from: to use its value, e.g. from: [x, {layer.use}]",
                )
        raise SpecError(
            f"use: refers to unknown layer {layer.use!r}",
            source=layer.source,
            hint=did_you_mean(layer.use, self.modules) or "name a layer defined above",
        )

    def tie(self, module: nn.Module, layer: LayerSpec, prefix: str) -> nn.Module:
        """Make each `tie:` parameter of `module` the very tensor of a parameter built before it."""
        for tie in layer.ties:
            own = dict(module.named_parameters())
            if tie.param not in own or "." in tie.param:
                raise SpecError(
                    f"tie: {layer.op} has no parameter {tie.param!r}",
                    source=tie.source,
                    hint=did_you_mean(tie.param, own) or f"{layer.op} has {', '.join(own) or 'no parameters'}",
                )
            target = self.parameter(tie.target, prefix, tie.source)
            if target.shape != own[tie.param].shape:
                shape = "x".join(map(str, target.shape))
                wanted = "x".join(map(str, own[tie.param].shape))
                raise SpecError(
                    f"tie: {tie.target} is {shape} but {layer.name}.{tie.param} is {wanted}",
                    source=tie.source,
                    hint="tied parameters must have the same shape",
                )
            setattr(module, tie.param, target)
        return module

    def parameter(self, name: str, prefix: str, where: Source) -> nn.Parameter:
        """The parameter called `name` (relative to the current block, else from the model's top)."""
        for qualname in (prefix + name, name):
            if isinstance(self.tensors.get(qualname), nn.Parameter):  # a `param:` layer
                return self.tensors[qualname]  # type: ignore[return-value]
            owner, _, rest = qualname.rpartition(".")
            while owner and owner not in self.modules:
                owner, _, head = owner.rpartition(".")
                rest = f"{head}.{rest}"
            if owner in self.modules:
                try:
                    return self.modules[owner].get_parameter(rest)
                except AttributeError:
                    pass
        known = [f"{q}.{n}" for q, m in self.modules.items() for n, _ in m.named_parameters()]
        known += [q for q, t in self.tensors.items() if isinstance(t, nn.Parameter)]
        raise SpecError(
            f"tie: no parameter {name!r} is defined above",
            source=where,
            hint=did_you_mean(name, known) or "tie to a parameter of a layer above, e.g. wte.weight",
        )
