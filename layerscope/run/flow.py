"""Data flow during the one traced forward: which call produced each tensor a layer takes in.

Each tensor is tagged with the node that produced it: `input:k` (the model's k-th input tensor),
`layer:i` (the i-th LayerRecord, in call order) or `join:j` (the j-th Join). A leaf layer tags
what it returns; an op run by Python code between modules (in a container's forward: a view, a
flatten, `out += identity`, `torch.cat`) passes its input's tag on, and where it combines tensors
of different producers it is a join, a node of its own. Ops inside a leaf layer are not followed:
the layer's output is tagged when it returns. A container none of whose child modules was called
(nn.MultiheadAttention, which computes with its out_proj's weights but never calls it) is a leaf of
the flow too: what it returns is tagged as its own and the joins its inner ops made are dropped; a
tensor still tagged with one of them is retagged as made by the container. The ops are seen by run.counting.OpCounter, the
dispatch mode already active during the run (its `flow`), so nothing else is installed.

Tags are kept by tensor identity, through weak references: a tensor freed during the run takes its
tag with it, so a later tensor at the same address starts untagged.
"""

from __future__ import annotations

import weakref
from typing import Any

from torch import Tensor

from layerscope._torch_compat import tensor_version
from layerscope.run.records import Join, LayerRecord
from layerscope.run.tensors import tensors_in


def _made_after(tag: str, index: int, joins_before: int) -> bool:
    """Whether node `tag` came into being inside call `index`: a later layer, or a join made since."""
    kind, _, number = tag.partition(":")
    return (kind == "layer" and int(number) > index) or (kind == "join" and int(number) >= joins_before)


class Flow:
    """The tags of one run, and the joins found; the hooks and the op counter feed it."""

    def __init__(self) -> None:
        self._tags: dict[int, tuple[weakref.ref[Tensor], str]] = {}
        self.joins: list[Join] = []
        # calls still open, innermost last: record, its index, joins before it, its input tensors with their versions
        self._open: list[tuple[LayerRecord, int, int, list[tuple[Tensor, int | None]]]] = []
        self._in_leaf = 0  # leaf calls open: their inner ops are not followed
        self._last = -1  # the index of the last call begun: a call with a later one inside called a module

    def tag_of(self, t: Tensor) -> str | None:
        """The node that produced `t`, None for a tensor no layer or input gave (a parameter, a new tensor)."""
        entry = self._tags.get(id(t))
        return entry[1] if entry is not None and entry[0]() is t else None

    def _tag(self, t: Tensor, node: str) -> None:
        self._tags[id(t)] = (weakref.ref(t), node)

    def start(self, inputs: list[Tensor]) -> None:
        """Tag the model's input tensors (run.trace.tensors_in of its arguments) `input:0`, `input:1`, …"""
        for k, t in enumerate(inputs):
            if self.tag_of(t) is None:  # the same tensor passed twice is one input
                self._tag(t, f"input:{k}")

    def entered(self, record: LayerRecord, index: int, tensors: list[Tensor]) -> None:
        """Call `index` began with these input tensors: their producers, one each (aligned with `input_shapes`)."""
        record.inputs_from = [self.tag_of(t) for t in tensors]
        self._last = index
        self._open.append((record, index, len(self.joins), [(t, tensor_version(t)) for t in tensors]))
        self._in_leaf += record.is_leaf

    def left(self, outputs: list[Tensor]) -> None:
        """The innermost open call returned these tensors. A leaf tags what it made, not an input it
        returned untouched (nn.Identity, eval-mode Dropout). A container in which no module was called
        is such a leaf too: the joins of its own ops are dropped. Any other container keeps the tag of
        what a layer or join inside it made, and tags the rest of what its own code made."""
        if not self._open:
            return
        record, index, joins_before, taken = self._open.pop()
        self._in_leaf -= record.is_leaf
        leaf = record.is_leaf or self._last == index  # no call began inside it
        if leaf and len(self.joins) > joins_before:
            self._drop_joins(joins_before, f"layer:{index}")
        for t in outputs:
            if any(t is x and (v is None or tensor_version(t) == v) for x, v in taken):
                continue  # returned as it came in
            tag = self.tag_of(t)
            if leaf or tag is None or not _made_after(tag, index, joins_before):
                self._tag(t, f"layer:{index}")
        record.outputs_from = [self.tag_of(t) for t in outputs]

    def _drop_joins(self, first: int, node: str) -> None:
        """Forget joins `first`, … (made inside call `node`, now seen as a leaf); a tensor still tagged
        with one of them (kept by the module, returned later) was made by that call, and says so, so
        that no later join of the same number is taken for a dropped one."""
        dropped = {f"join:{j}" for j in range(first, len(self.joins))}
        del self.joins[first:]
        for key, (ref, tag) in list(self._tags.items()):
            if tag in dropped:
                self._tags[key] = (ref, node)

    def op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        """An aten op ran (OpCounter calls this): outside leaf layers, its output takes its inputs' tag,
        or a new join's when it combines tensors of several producers."""
        if self._in_leaf:
            return
        firsts: dict[str, Tensor] = {}  # producer → its first tensor among the op's inputs
        for t in tensors_in([args, kwargs]):
            node = self.tag_of(t)
            if node is not None and node not in firsts:
                firsts[node] = t
        if not firsts:
            return
        outputs = tensors_in(out)
        if len(firsts) == 1:
            node = next(iter(firsts))
        else:
            node = f"join:{len(self.joins)}"
            self.joins.append(
                Join(
                    op=func.overloadpacket.__name__.rstrip("_"),
                    inputs_from=list(firsts),
                    input_shapes=[list(t.shape) for t in firsts.values()],
                    output_shapes=[list(t.shape) for t in outputs],
                    within=self._open[-1][0].name if self._open else "",
                )
            )
        for t in outputs:
            self._tag(t, node)
