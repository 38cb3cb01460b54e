"""`layerscope graph`: the layer DAG as Mermaid and DOT, checked against the models' own forward code,
Graphviz's own parser where it is installed, and the export rules of every other file output."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

from layerscope import api
from layerscope.render.graph import build_graph, mermaid_text, to_dot, to_mermaid

RESIDUAL = ["graph", "tests.python_models:Residual", "--allow-import", "-i", "1x3x8x8"]


def test_a_python_residual_block_drawn_from_its_forward(cli) -> None:
    """tests/python_models.py's Residual: conv1 → relu → conv2, `out += x`, `torch.cat([out, x], 1)`."""
    run = cli(*RESIDUAL)
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (
        "flowchart TD\n"
        '    I0[/"input<br/>1x3x8x8"/]\n'
        '    L1["conv1<br/>Conv2d"]\n'
        '    L2["relu<br/>ReLU"]\n'
        '    L3["conv2<br/>Conv2d"]\n'
        '    J0(("add<br/>in Residual"))\n'  # out += x: two producers, a join
        '    J1(("cat<br/>in Residual"))\n'  # torch.cat([out, x], 1): the add's output and the input again
        '    OUT(["output"])\n'
        '    I0 -->|"1x3x8x8"| L1\n'
        '    L1 -->|"1x3x8x8"| L2\n'
        '    L2 -->|"1x3x8x8"| L3\n'
        '    L3 -->|"1x3x8x8"| J0\n'
        '    I0 -->|"1x3x8x8"| J0\n'
        '    J0 -->|"1x3x8x8"| J1\n'
        '    I0 -->|"1x3x8x8"| J1\n'
        '    J1 -->|"1x6x8x8"| OUT\n'  # 3 + 3 channels
    )


def test_every_layer_of_resnet18_is_a_node_with_its_producers() -> None:
    """Each edge into a leaf is one of its inputs_from; every leaf that ran is a node, by full name."""
    report = api.inspect("resnet18", device="meta")
    graph = build_graph(report)
    labels = {n.id: n.lines for n in graph.nodes}
    leaves = [(i, r) for i, r in enumerate(report.layers) if r.is_leaf]
    assert all(labels[f"L{i}"][0] == r.name for i, r in leaves)
    into = {(s, t) for s, t, _ in graph.edges}
    residual = next(i for i, r in leaves if r.name == "layer2.0.residual")
    assert {s for s, t in into if t == f"L{residual}"} == {
        f"L{i}" for i, r in leaves if r.name in ("layer2.0.bn2", "layer2.0.downsample.1")
    }
    assert ("L" + str(len(report.layers) - 1), "OUT") in into  # fc, the last layer, gives the output


class OddNames(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(
            {name: nn.Linear(2, 2) for name in ['say "hi"', "a#b;c", "<b>x</b>", "`code`", "x]y[z", "ünï", "a\\b"]}
        )

    def forward(self, x):
        for part in self.parts.values():
            x = part(x)
        return x


def _mermaid_lines_are_valid(text: str) -> None:
    """Every line a node or an edge whose labels are quoted and hold no quote, backtick or angle bracket
    of their own (only <br/>), and nothing outside printable ASCII."""
    node = re.compile(r'    [A-Za-z]\w*(\[/|\[|\(\(|\(\[)"([^"`<>]|<br/>)*"(/\]|\]|\)\)|\]\))')
    edge = re.compile(r'    [A-Za-z]\w* -->\|"[^"`<>]*"\| [A-Za-z]\w*')
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    for line in lines[1:]:
        assert node.fullmatch(line) or edge.fullmatch(line), line
        assert line.isascii() and line.isprintable(), line


def test_odd_module_names_are_escaped_for_mermaid_and_dot() -> None:
    report = api.inspect(OddNames(), (1, 2), device="cpu")
    graph = build_graph(report)
    names = [n.lines[0] for n in graph.nodes if n.kind == "layer"]
    assert names == [f"parts.{k}" for k in OddNames().parts]
    text = to_mermaid(graph)
    _mermaid_lines_are_valid(text)
    # Mermaid's entity codes (#34;) read back as the names: the same decoding as HTML's &#34;
    shown = re.findall(r'\["(.*?)<br/>Linear"\]', text)
    assert [html.unescape(re.sub(r"#(\d+);", r"&#\1;", s)) for s in shown] == names
    assert mermaid_text('a"b#c') == "a#34;b#35;c"


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_reads_the_dot_text_of_odd_names() -> None:
    dot = to_dot(build_graph(api.inspect(OddNames(), (1, 2), device="cpu")))
    plain = subprocess.run(["dot", "-Tplain"], input=dot, capture_output=True, text=True, check=True).stdout
    shown = [line for line in plain.splitlines() if line.startswith("node ")]
    assert len(shown) == 1 + 7 + 1  # the input, the seven layers, the output
    assert 'parts.say \\"hi\\"' in dot and "parts.a\\\\b" in dot


def test_dot_format_and_text_exports(cli, tmp_path: Path) -> None:
    mermaid = cli("graph", "lenet")
    dot = cli("graph", "lenet", "--format", "dot", "--export", str(tmp_path / "g.mmd"))
    assert dot.stdout.startswith('digraph "LeNet" {') and (tmp_path / "g.mmd").read_text() == mermaid.stdout
    assert cli("graph", "lenet", "--export", str(tmp_path / "g.dot")).exit_code == 0
    assert (tmp_path / "g.dot").read_text() == dot.stdout


def test_svg_export_without_graphviz_is_one_line(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    run = cli(*RESIDUAL, "--export", str(tmp_path / "g.svg"))
    assert run.exit_code == 2 and run.stderr.count("\n") == 1
    assert "needs Graphviz's `dot` program, which is not on PATH" in run.stderr
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_export_with_graphviz(cli, tmp_path: Path) -> None:
    run = cli(*RESIDUAL, "--export", str(tmp_path / "g.svg"))
    assert run.exit_code == 0, run.stderr
    svg = (tmp_path / "g.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "conv2" in svg and "cat" in svg


@pytest.mark.parametrize(
    ("name", "message"),
    [("g.png", "cannot export a graph to 'g.png'"), ("sub.dot", "is a directory; it was left as it is")],
)
def test_bad_exports_are_one_line(cli, tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "sub.dot").mkdir()
    run = cli("graph", "lenet", "--export", str(tmp_path / name))
    assert run.exit_code == 2 and run.stderr.count("\n") == 1 and message in run.stderr, run.stderr


def test_a_failing_model_draws_what_ran_and_exits_1(cli) -> None:
    run = cli("graph", "lenet", "--input", "1x1x28x28")
    assert run.exit_code == 1 and run.stderr.count("\n") == 1
    assert '    L8["fc1<br/>Linear (failed)"]' in run.stdout  # it got 1x16x5x5 flattened, 400 features
    assert '    L7 -->|"1x400"| L8' in run.stdout and "output" not in run.stdout


def test_a_model_that_did_not_run_has_no_graph(cli) -> None:
    run = cli("graph", "tests.python_models:Residual", "--allow-import")  # no --input: nothing ran
    assert run.exit_code == 2 and run.stderr.count("\n") == 1 and run.stdout == ""
    assert "this model did not run" in run.stderr and "--input" in run.stderr


def _connected(graph) -> None:
    """Every node is reachable from an input and reaches the output, along the graph's edges."""
    ahead: dict[str, set[str]] = {n.id: set() for n in graph.nodes}
    behind: dict[str, set[str]] = {n.id: set() for n in graph.nodes}
    for source, target, _ in graph.edges:
        ahead[source].add(target)
        behind[target].add(source)

    def reach(starts: list[str], step: dict[str, set[str]]) -> set[str]:
        seen, todo = set(starts), list(starts)
        while todo:
            for nxt in step[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    everything = set(ahead)
    assert reach([n.id for n in graph.nodes if n.kind == "input"], ahead) == everything
    assert reach(["OUT"], behind) == everything


def test_self_attention_is_fed_by_the_input(cli) -> None:
    """tests/attention_models.py's SelfAttention, `attn(x, x, x)[0]` on a 5x2x8 input."""
    run = cli("graph", "tests.attention_models:SelfAttention", "--allow-import", "-i", "5x2x8")
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (
        "flowchart TD\n"
        '    I0[/"input<br/>5x2x8"/]\n'
        '    L1["attn<br/>MultiheadAttention"]\n'
        '    OUT(["output"])\n'
        '    I0 -->|"5x2x8"| L1\n'
        '    L1 -->|"5x2x8"| OUT\n'  # (sequence, batch, embedding) in and out
    )


@pytest.mark.parametrize(
    ("model", "edges"),
    [
        ("NormThenAttention", {("I0", "L1"), ("L1", "L2"), ("L2", "OUT")}),  # y = ln(x); attn(y, y, y)
        ("CrossAttention", {("I0", "L1"), ("I0", "L2"), ("L1", "L2"), ("L2", "OUT")}),  # attn(x, ln(x), ln(x))
    ],
)
def test_attention_after_a_layer_norm_is_one_node_fed_by_what_it_takes(model: str, edges: set) -> None:
    """The edges read off each forward, every one a 5x2x8 tensor (attention keeps the input's shape);
    no bmm of the attention's insides is a node."""
    from tests import attention_models

    module = getattr(attention_models, model)()
    report = api.inspect(module, (5, 2, 8), device="cpu")
    graph = build_graph(report)
    assert [n.lines[0] for n in graph.nodes] == ["input", "ln", "attn", "output"]
    assert {(s, t) for s, t, _ in graph.edges} == edges
    assert {label for _, _, label in graph.edges} == {"5x2x8"}
    _connected(graph)


def test_the_bundled_transformer_encoder_is_connected_with_the_real_shapes() -> None:
    """configs/transformer_encoder.yaml: each of the 6 self_attn takes what came before it (the input
    or the previous layer's norm2), every node lies on a path from the input to the output, and each
    edge into a layer carries the shape a real forward of nn.TransformerEncoder hands that module."""
    report = api.inspect("transformer_encoder", device="meta")
    graph = build_graph(report)
    _connected(graph)
    names = {f"L{i}": r.name for i, r in enumerate(report.layers)}
    into = {names[t]: names.get(s, s) for s, t, _ in graph.edges if "self_attn" in names.get(t, "")}
    assert into == {f"encoder.layers.{k}.self_attn": f"encoder.layers.{k - 1}.norm2" for k in range(1, 6)} | {
        "encoder.layers.0.self_attn": "I0"
    }
    layer = nn.TransformerEncoderLayer(512, 8)
    real = nn.TransformerEncoder(layer, 6, enable_nested_tensor=False).eval()
    seen: dict[str, str] = {}

    def hook(name: str):
        def record(_: nn.Module, args: tuple) -> None:
            seen.setdefault(name, "x".join(map(str, args[0].shape)))

        return record

    handles = [m.register_forward_pre_hook(hook(f"encoder.{n}")) for n, m in real.named_modules() if n]
    with torch.no_grad():
        real(torch.zeros(10, 32, 512))
    for handle in handles:
        handle.remove()
    drawn = {(names[t], label) for s, t, label in graph.edges if t in names and names[t] in seen}
    assert drawn and all(seen[name] == label for name, label in drawn)
    assert {names[t] for t in (t for _, t, _ in graph.edges) if t in names} <= set(seen)
