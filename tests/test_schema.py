"""`layerscope schema`: the JSON Schema editors use for spec files, and the configs that point at it."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import yaml

from conftest import ROOT

SCHEMA_FILE = ROOT / "configs" / "spec.schema.json"
SPECS = sorted([*(ROOT / "configs").glob("*.yaml"), *(ROOT / "tests" / "specs").glob("*.yaml")])
DOC_EXAMPLES = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "spec.md").read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_bundled_schema_is_what_the_command_prints(cli) -> None:
    run = cli("schema")
    assert run.exit_code == 0
    assert json.loads(run.stdout) == json.loads(
        SCHEMA_FILE.read_text(encoding="utf-8")
    )  # regenerate: layerscope schema > configs/spec.schema.json


def test_every_bundled_config_points_editors_at_the_schema() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=spec.schema.json", path.name
        assert (path.parent / "spec.schema.json").is_file()


@pytest.mark.parametrize(
    "text",
    [p.read_text(encoding="utf-8") for p in SPECS] + DOC_EXAMPLES,
    ids=[p.name for p in SPECS] + [f"docs-{i}" for i in range(len(DOC_EXAMPLES))],
)
def test_every_spec_layerscope_accepts_is_valid(validator, text: str) -> None:
    for doc in yaml.safe_load_all(text):
        assert not [e.message for e in validator.iter_errors(doc)]


def test_op_arguments_are_offered_per_op(validator) -> None:
    linear = next(
        rule
        for rule in validator.schema["$defs"]["layer"]["allOf"]
        if rule["if"]["properties"]["op"]["const"] == "Linear"
    )
    assert set(linear["then"]["properties"]) == {"in_features", "out_features", "bias"}
    assert linear["then"]["properties"]["bias"]["default"] is True
    assert "Conv2d" in validator.schema["$defs"]["layer"]["properties"]["op"]["anyOf"][0]["enum"]


@pytest.mark.parametrize(
    ("text", "wrong"),
    [
        ("layer:\n  - {op: Linear, out_features: 3}\n", "'layer' was unexpected"),
        ("input: {shape: [1, 3], dtype: float}\nlayers: []\n", "'float' is not one of"),
        ("input: {shape: [1, 3], dtpye: float32}\nlayers: []\n", "'dtpye' was unexpected"),
        ("layers:\n  - {op: Linear, out_features: ten}\n", "'ten' is not valid"),
        ("layers:\n  - {op: Linear, repeat: many}\n", "'many' is not valid"),
        ("blocks:\n  B: {params: {c: 1}}\nlayers: []\n", "'layers' is a required property"),
        ("layers:\n  - {name: 'a b', op: relu}\n", "'a b' does not match"),
    ],
)
def test_mistakes_an_editor_underlines(validator, text: str, wrong: str) -> None:
    messages = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
    messages += [m for e in validator.iter_errors(yaml.safe_load(text)) for c in (e.context or []) for m in [c.message]]
    assert any(wrong in m for m in messages), messages


def test_expressions_are_valid_wherever_a_value_is() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    doc = {
        "vars": {"w": 8},
        "input": {"shape": [1, "${w}"]},
        "layers": [{"op": "Linear", "out_features": "${2 * w}", "repeat": "${w}"}],
    }
    jsonschema.validate(doc, schema)
