"""The layer graph of a report, as Mermaid or Graphviz DOT text: the model's inputs, its leaf layers and
the joins of its Python code as nodes, the tensors between them as edges labelled with their shape.

Built from the data flow the run recorded (LayerRecord.inputs_from, Report.joins; run/flow.py). A
layer is a node under its full name (`layer1.0.conv1`) and type; a module called again is a node per
call (`(call 2)`); a container is a node only where a tensor came straight from its own code, and then has edges from
its inputs as a layer has. No torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from layerscope.report.model import Report
from layerscope.run.records import LayerRecord
from layerscope.spec.shapes import format_shape

Shape = list[int]


@dataclass
class Node:
    id: str  # safe in both languages: letters, digits, _
    lines: list[str]  # the label, line by line
    kind: str  # input, layer, join, output


@dataclass
class Graph:
    name: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # from id, to id, label


def _node_id(ref: str) -> str:
    """`layer:12` → `L12`, `join:3` → `J3`, `input:0` → `I0`."""
    kind, _, number = ref.partition(":")
    return {"layer": "L", "join": "J", "input": "I"}[kind] + number


def _passed_on(index: int, record: LayerRecord) -> bool:
    """Whether a call returned its input untouched (nn.Identity, eval-mode Dropout): what comes next
    takes the input from its producer (run/flow.py), so the call would be a dead end in the graph."""
    return record.completed and bool(record.outputs_from) and f"layer:{index}" not in record.outputs_from


def build_graph(report: Report) -> Graph:
    """The report's data flow as nodes and edges: every leaf layer that ran (or failed), every join,
    the inputs and the output, and any container a tensor came from directly. A leaf that passed its
    input on untouched is left out: nothing took a tensor from it."""
    graph = Graph(report.model)
    wanted = {f"layer:{i}" for i, r in enumerate(report.layers) if r.is_leaf and i > 0 and not _passed_on(i, r)}
    if len(report.layers) == 1:  # the model is one layer
        wanted.add("layer:0")
    consumers: list[tuple[str, list[str | None], list[Shape]]] = [
        (f"layer:{i}", r.inputs_from, r.input_shapes) for i, r in enumerate(report.layers) if f"layer:{i}" in wanted
    ]
    consumers += [(f"join:{j}", list(join.inputs_from), join.input_shapes) for j, join in enumerate(report.joins)]
    output = report.layers[0].outputs_from if report.layers and report.layers[0].completed else None
    used = {ref for _, froms, _ in consumers for ref in froms if ref is not None} | set(output or []) - {None}
    drawn = set(wanted)
    while more := sorted(r for r in used - drawn if r.startswith("layer:")):  # a container drawn: its inputs too
        drawn.update(more)
        added = [(ref, report.layers[int(ref.partition(":")[2])]) for ref in more]
        consumers += [(ref, list(r.inputs_from), r.input_shapes) for ref, r in added]
        used.update(ref for _, r in added for ref in r.inputs_from if ref is not None)
    if output is not None:
        consumers.append(("output", list(output), report.output_shapes))
    for k, shape in enumerate(report.input_shapes):
        if f"input:{k}" in used:
            graph.nodes.append(
                Node(f"I{k}", [f"input {k}" if len(report.input_shapes) > 1 else "input", format_shape(shape)], "input")
            )
    calls: dict[str, int] = {}
    for i, record in enumerate(report.layers):
        calls[record.name] = calls.get(record.name, 0) + 1
        if f"layer:{i}" in wanted or f"layer:{i}" in used:
            again = f" (call {calls[record.name]})" if calls[record.name] > 1 else ""
            failed = "" if record.completed else " (failed)"
            graph.nodes.append(Node(f"L{i}", [record.name or report.model, record.type + again + failed], "layer"))
    for j, join in enumerate(report.joins):
        graph.nodes.append(Node(f"J{j}", [join.op, f"in {join.within or report.model}"], "join"))
    if consumers and consumers[-1][0] == "output":
        graph.nodes.append(Node("OUT", ["output"], "output"))  # capitals: Mermaid may read `--o` as a circle edge
    seen: set[tuple[str, str, str]] = set()
    for ref, froms, shapes in consumers:
        target = "OUT" if ref == "output" else _node_id(ref)
        for source, shape in zip(froms, shapes, strict=False):
            edge = (_node_id(source), target, format_shape(shape)) if source is not None else None
            if edge is not None and edge not in seen:
                seen.add(edge)
                graph.edges.append(edge)
    return graph


_MERMAID_SPECIAL = re.compile(r'[#"<>&`\\]|[^\x20-\x7e]')


def mermaid_text(text: str) -> str:
    """`text` safe inside a quoted Mermaid label: its special characters (and any outside printable
    ASCII) as entity codes (`#34;`), which Mermaid turns back into the character."""
    return _MERMAID_SPECIAL.sub(lambda m: f"#{ord(m.group(0))};", text)


_MERMAID_SHAPES = {"input": ('[/"', '"/]'), "layer": ('["', '"]'), "join": ('(("', '"))'), "output": ('(["', '"])')}


def to_mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart, top to bottom."""
    lines = ["flowchart TD"]
    for node in graph.nodes:
        opening, closing = _MERMAID_SHAPES[node.kind]
        lines.append(f"    {node.id}{opening}{'<br/>'.join(mermaid_text(t) for t in node.lines)}{closing}")
    for source, target, label in graph.edges:
        lines.append(f'    {source} -->|"{mermaid_text(label)}"| {target}')
    return "\n".join(lines) + "\n"


def dot_text(text: str) -> str:
    """`text` inside a DOT double-quoted string: backslashes and quotes escaped, control characters dropped."""
    text = "".join(c for c in text if c.isprintable())
    return text.replace("\\", "\\\\").replace('"', '\\"')


_DOT_SHAPES = {"input": "parallelogram", "layer": "box", "join": "circle", "output": "invtrapezium"}


def to_dot(graph: Graph) -> str:
    """The graph as a Graphviz digraph, top to bottom."""
    lines = [f'digraph "{dot_text(graph.name)}" {{', "    rankdir=TB;", '    node [fontname="Helvetica"];']
    lines.append('    edge [fontname="Helvetica", fontsize=10];')
    for node in graph.nodes:
        label = "\\n".join(dot_text(t) for t in node.lines)
        lines.append(f'    {node.id} [shape={_DOT_SHAPES[node.kind]}, label="{label}"];')
    for source, target, label in graph.edges:
        lines.append(f'    {source} -> {target} [label="{dot_text(label)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
