"""Spec stage, `blocks:`: reusable sub-graphs, and the params and inputs of one use of a block.

A block's layers are kept unparsed: each use parses them anew (layers.py), in the model's vars plus
that use's params.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from layerscope.errors import Source, SpecError
from layerscope.spec.catalog import lookup
from layerscope.spec.expr import Resolver
from layerscope.spec.layer_spec import BLOCK_KEYS, LAYER_KEYS, check_keys, identifier, reject_unknown
from layerscope.spec.source import YList, YMap


@dataclass(frozen=True)
class BlockDef:
    """A reusable sub-graph from `blocks:`; its layers are parsed anew for each use."""

    name: str
    params: dict[str, Any]  # name → default; None means required
    param_sources: dict[str, Source]
    inputs: tuple[str, ...]
    layers: YList
    source: Source

    def bind(self, item: YMap, head: YMap, model_scope: Resolver) -> tuple[dict[str, Any], dict[str, Source]]:
        """One use's params (defaults resolved in the model's vars) and where each was written."""
        op = self.name
        if "args" in item:
            raise SpecError(f"block {op} takes named params, not args:", source=item.key_sources["args"])
        given = {k: v for k, v in item.items() if k not in LAYER_KEYS}
        reject_unknown(item, given, self.params, f"block {op} has no param {{key!r}}", f"{op} params")
        values = {**{k: model_scope.resolve(v, self.param_sources[k]) for k, v in self.params.items()}, **given}
        missing = [k for k, v in values.items() if v is None]
        if missing:
            raise SpecError(
                f"block {op} needs {missing[0]}:", source=item.source, hint=f"{op} params: {', '.join(self.params)}"
            )
        wanted = len(head.get("from", [])) if isinstance(head.get("from"), list) else 1
        if wanted != len(self.inputs):
            raise SpecError(
                f"block {op} takes {len(self.inputs)} input(s) ({', '.join(self.inputs)}), but gets {wanted}",
                source=head.where("from") if "from" in head else item.source,
                hint="name them with from: [a, b]",
            )
        return values, {k: (item.where(k) if k in given else self.param_sources[k]) for k in values}


def parse_blocks(raw: Any, where: Source) -> dict[str, BlockDef]:
    """`blocks:` → block definitions; their layers wait, unresolved, until a layer uses them."""
    if raw is None:
        return {}
    if not isinstance(raw, YMap):
        raise SpecError("blocks: must map block names to {params:, layers:}", source=where)
    return {name: _block(name, body, raw) for name, body in raw.items()}


def _block(name: Any, body: Any, raw: YMap) -> BlockDef:
    key_where = raw.key_sources[name]
    identifier(name, "block name", key_where)
    if lookup(name) is not None or name in ("Sequential", "use"):
        raise SpecError(f"block name {name!r} is already an op", source=key_where, hint="pick another name")
    if not isinstance(body, YMap):
        raise SpecError(f"block {name} must be a mapping with layers:", source=raw.where(name))
    check_keys(body, BLOCK_KEYS, "block")
    params = body.get("params") or YMap()
    if not isinstance(params, YMap):
        raise SpecError("params: must map names to defaults (null: required)", source=body.where("params"))
    for param in params:
        identifier(param, "param name", params.key_sources[param])
    inputs = body.get("inputs", ["input"])
    if not isinstance(inputs, list) or not inputs:
        raise SpecError("inputs: must list the block's input names", source=body.where("inputs"))
    for i, input_name in enumerate(inputs):
        identifier(input_name, "input name", inputs.where(i) if isinstance(inputs, YList) else body.source)
    if not isinstance(body.get("layers"), YList) or not body["layers"]:
        raise SpecError(f"block {name} needs a non-empty layers: list", source=body.where("layers"))
    return BlockDef(name, dict(params), {k: params.where(k) for k in params}, tuple(inputs), body["layers"], key_where)
