"""docs/spec.md's examples are specs: each builds, traces and has the counts its `# expect:` line gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from layerscope.builder.builder import build
from layerscope.report.assemble import run_and_report as trace
from layerscope.spec.model import load_spec
from layerscope.spec.shapes import format_shapes

from conftest import ROOT

DOC = ROOT / "docs" / "spec.md"
EXAMPLES = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_reference_has_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("text", EXAMPLES, ids=[re.search(r"name: (\w+)", t).group(1) for t in EXAMPLES])
def test_example_builds_with_the_expected_counts(tmp_path: Path, text: str) -> None:
    expect = dict(re.findall(r"(\w+)=(\S+)", re.search(r"# expect: (.*)", text).group(1)))
    path = tmp_path / "example.yaml"
    path.write_text(text, encoding="utf-8")
    spec = load_spec(path)
    built = build(spec)
    report = trace(built.model, built.inputs, name=spec.name)
    assert report.failure is None
    assert report.total_params == int(expect["total_params"])
    assert format_shapes(report.output_shapes) == expect["output"]


def test_every_layer_key_and_model_key_is_documented() -> None:
    from layerscope.spec.layer_spec import BLOCK_KEYS, LAYER_KEYS
    from layerscope.spec.model import INPUT_KEYS, MODEL_KEYS
    from layerscope.spec.ops import FUNCTIONAL_OPS

    doc = DOC.read_text(encoding="utf-8")
    for key in (*MODEL_KEYS, *LAYER_KEYS, *INPUT_KEYS, *BLOCK_KEYS, *FUNCTIONAL_OPS):
        assert f"`{key}`" in doc, key


def test_the_readmes_python_examples_run_and_print_what_their_comments_say(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    printed = capsys.readouterr().out.splitlines()
    promised = [c.strip() for b in blocks for c in re.findall(r"print\(.*?\)\s+#(.*)", b)]
    assert printed == promised
