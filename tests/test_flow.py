"""Data flow (run/flow.py): which call produced each tensor a layer takes in, checked against the
models' own code — every expectation below is read off the forward written next to it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from layerscope import api
from layerscope.run.trace import trace


class Block(nn.Module):
    """A residual block written in Python: its add and cat are not modules."""

    def __init__(self) -> None:
        super().__init__()
        self.shortcut = nn.Identity()
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = self.shortcut(x)  # returns x itself: x's producer stays the producer
        out = self.relu(self.conv1(x))  # in place: the ReLU's output is the conv's tensor, changed
        out = self.conv2(out)
        out += identity  # a join: conv2 and the input
        return torch.cat([out, x], 1).flatten(1)  # a join of the add and the input, then a view


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.fc = nn.Linear(6 * 8 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block(x))


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_python_joins_views_identity_and_in_place(device: str) -> None:
    run = trace(Net().to(device), [torch.zeros(1, 3, 8, 8, device=device)])
    index = {r.name: i for i, r in enumerate(run.records)}
    frm = {r.name: r.inputs_from for r in run.records}
    assert frm[""] == ["input:0"]
    assert frm["block.conv1"] == ["input:0"]
    assert frm["block.relu"] == [f"layer:{index['block.conv1']}"]
    assert frm["block.conv2"] == [f"layer:{index['block.relu']}"]
    assert run.records[index["block.shortcut"]].outputs_from == ["input:0"]
    add, cat = run.joins
    assert (add.op, add.inputs_from, add.within) == ("add", [f"layer:{index['block.conv2']}", "input:0"], "block")
    assert (cat.op, cat.inputs_from, cat.output_shapes) == ("cat", ["join:0", "input:0"], [[1, 6, 8, 8]])
    assert frm["fc"] == ["join:1"]  # through the flatten, a view
    assert run.records[index["block"]].outputs_from == ["join:1"]
    assert run.records[0].outputs_from == [f"layer:{index['fc']}"]


def test_a_spec_add_is_a_layer_with_two_producers() -> None:
    report = api.inspect("resnet18", device="meta")
    index = {r.name: i for i, r in enumerate(report.layers)}  # a name called twice: its last call
    residual = report.layers[index["layer2.0.residual"]]
    # configs/resnet18.yaml: `{name: residual, op: add, from: [bn2, downsample]}`
    assert residual.inputs_from == [f"layer:{index['layer2.0.bn2']}", f"layer:{index['layer2.0.downsample.1']}"]
    assert report.joins == []  # every op between layers of a spec is a layer
    # the block's `{use: relu}` after the add, the relu's second call, feeds the next block's shortcut
    assert report.layers[index["layer2.0.downsample.0"]].inputs_from == [f"layer:{index['layer1.1.relu']}"]
    assert report.layers[index["layer1.1.relu"]].shared_with == "layer1.1.relu"


def test_a_module_called_twice_and_a_tensor_used_twice() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = self.lin(x)
            b = self.lin(a)  # the same module again: a second record, fed by the first
            return a * b  # one join, two producers

    run = trace(Twice(), [torch.zeros(2, 4)])
    first, second = run.records[1], run.records[2]
    assert (first.inputs_from, second.inputs_from, second.shared_with) == (["input:0"], ["layer:1"], "lin")
    assert [(j.op, j.inputs_from) for j in run.joins] == [("mul", ["layer:1", "layer:2"])]


def test_a_container_that_computes_its_own_output_produces_it() -> None:
    """nn.MultiheadAttention has a child (out_proj) it never calls: its output is made by its own
    forward, so the attention is the producer the residual add joins with the input."""

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.norm = nn.LayerNorm(8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.norm(x + self.attn(x, x, x, need_weights=False)[0])

    run = trace(Attention(), [torch.zeros(1, 5, 8)])
    names = [r.name for r in run.records]
    attn = run.records[names.index("attn")]
    assert (attn.is_leaf, attn.inputs_from, attn.outputs_from) == (False, ["input:0"] * 3, ["layer:1"])
    assert [(j.op, j.inputs_from) for j in run.joins] == [("add", ["input:0", "layer:1"])]
    assert run.records[names.index("norm")].inputs_from == ["join:0"]


def test_attention_with_a_query_other_than_its_key_is_one_node() -> None:
    """tests/attention_models.py's CrossAttention: `attn(x, y, y)` with y = ln(x). The attention calls
    none of its children, so its inner matmuls of x's and y's projections are not joins of the model:
    the attention takes the input and the LayerNorm, and gives the output."""
    from tests.attention_models import CrossAttention

    run = trace(CrossAttention(), [torch.zeros(5, 2, 8)])
    assert [r.name for r in run.records] == ["", "ln", "attn"]
    root, ln, attn = run.records
    assert (ln.inputs_from, attn.inputs_from) == (["input:0"], ["input:0", "layer:1", "layer:1"])
    assert (attn.outputs_from[0], root.outputs_from) == ("layer:2", ["layer:2"])
    assert run.joins == []


def test_a_tensor_kept_from_a_dropped_join_is_the_containers() -> None:
    """tests/attention_models.py's KeptThenJoined: `keeper` (a child it never calls) makes `x * y` of
    two producers, keeps it and returns `x + y`; both are keeper's. The first cat joins keeper and the
    input, the second takes keeper's output alone, and the add joins the two cats — no join named
    after one made inside keeper."""
    from tests.attention_models import KeptThenJoined

    run = trace(KeptThenJoined(), [torch.zeros(5, 2, 8)])
    names = [r.name for r in run.records]
    keeper = names.index("keeper")
    assert run.records[keeper].inputs_from == ["input:0", f"layer:{names.index('ln')}"]
    assert [(j.op, j.inputs_from) for j in run.joins] == [
        ("cat", [f"layer:{keeper}", "input:0"]),
        ("add", ["join:0", f"layer:{keeper}"]),
    ]
    assert run.records[0].outputs_from == ["join:1"]
