"""Property tests: hypothesis writes specs — arbitrary unicode names, numbers at the edges, nested
blocks, repeats — and every one must end in a report (exit 0 or 1) or one line (exit 2), never a
traceback; whenever one builds, its exported Python must be inert and build the same model.

The default run tries PROPERTY_EXAMPLES specs; `python -m pytest -m slow tests/test_properties.py`
tries 10,000 (a few minutes per thousand on two cores).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_adversarial import exported_matches_built
from typer.testing import CliRunner

from layerscope.cli import app

PROPERTY_EXAMPLES = int(os.environ.get("LAYERSCOPE_PROPERTY_EXAMPLES", "100"))

EDGE_INTS = st.sampled_from([-1, 0, 1, 2, 3, 4, 7, 16, 2**31, 2**63 - 1, 2**63, 10**30])
SMALL = st.integers(1, 12)
SIZES = st.one_of(SMALL, SMALL, SMALL, EDGE_INTS)  # mostly sizes that build, so the export is tried too
IDENTIFIERS = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)
NAMES = st.one_of(
    IDENTIFIERS,
    IDENTIFIERS,
    IDENTIFIERS,
    st.sampled_from(["forward", "__class__", "_modules", "0", "1", "self", "torch", "nn", "x_0", "input", "class"]),
    st.text(max_size=12),
)
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 0.5, 1.0, -0.0]))


def op_layers() -> st.SearchStrategy[dict[str, Any]]:
    linear = st.fixed_dictionaries({"op": st.just("Linear"), "out_features": SIZES})
    functional = st.fixed_dictionaries({"op": st.sampled_from(["relu", "gelu", "tanh", "sigmoid", "ReLU", "GELU"])})
    norm = st.fixed_dictionaries({"op": st.just("LayerNorm")})
    dropout = st.fixed_dictionaries({"op": st.just("Dropout"), "p": FLOATS})
    flatten = st.fixed_dictionaries({"op": st.just("flatten"), "start_dim": st.integers(-3, 3)})
    return st.one_of(linear, functional, norm, dropout, flatten)


def named(layer: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    name = st.one_of(st.none(), st.none(), NAMES)
    return st.builds(lambda d, n: {**d, **({"name": n} if n is not None else {})}, layer, name)


def layers(depth: int = 2) -> st.SearchStrategy[list[dict[str, Any]]]:
    leaf = named(op_layers())
    if depth == 0:
        return st.lists(leaf, min_size=1, max_size=4)
    repeated = st.builds(
        lambda d, n: {**d, "repeat": n}, leaf, st.one_of(st.integers(1, 4), st.integers(1, 4), EDGE_INTS)
    )
    nested = st.builds(lambda inner, name: {"name": name, "layers": inner}, layers(depth - 1), NAMES)
    return st.lists(st.one_of(leaf, leaf, repeated, nested), min_size=1, max_size=5)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": draw(NAMES),
        "input": {"shape": draw(st.lists(st.one_of(SMALL, SMALL, SMALL, EDGE_INTS), min_size=1, max_size=4))},
        "layers": draw(layers()),
    }
    if draw(st.booleans()):  # a block, used by the last layer, maybe repeated
        block = draw(NAMES)
        spec["blocks"] = {block: {"layers": draw(layers(1))}}
        spec["layers"].append({"op": block, **({"repeat": draw(SIZES)} if draw(st.booleans()) else {})})
    if draw(st.booleans()):
        spec["description"] = draw(st.text(max_size=30))
    return spec


def check(spec: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "s.yaml"
        path.write_text(yaml.safe_dump(spec, allow_unicode=False), encoding="utf-8")
        env = {"COLUMNS": "100", "NO_COLOR": "1"}
        run = CliRunner().invoke(app, ["inspect", str(path)], env=env)
        assert not (run.exception and not isinstance(run.exception, SystemExit)), repr(run.exception)
        assert run.exit_code in (0, 1, 2), (run.exit_code, run.stderr)
        assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
        if run.exit_code == 2:
            assert run.stderr.count("\n") == 1, run.stderr
        if run.exit_code == 0:
            exported = CliRunner().invoke(app, ["export", str(path)], env=env)
            assert exported.exit_code in (0, 2), exported.stderr
            if exported.exit_code == 0:
                exported_matches_built(exported.stdout, path)


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=PROPERTY_EXAMPLES, **SETTINGS)  # type: ignore[arg-type]
@given(specs())
def test_any_spec_ends_in_a_report_or_one_line(spec: dict[str, Any]) -> None:
    check(spec)


@pytest.mark.slow
@settings(max_examples=10_000, **SETTINGS)  # type: ignore[arg-type]
@given(specs())
def test_ten_thousand_specs_end_in_a_report_or_one_line(spec: dict[str, Any]) -> None:
    check(spec)
