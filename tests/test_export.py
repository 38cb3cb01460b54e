"""`layerscope export SPEC --to python`: a standalone module equal to the spec's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import layerscope
from layerscope.builder.builder import build
from layerscope.builder.to_python import to_python
from layerscope.report.assemble import run_and_report as trace
from layerscope.spec.model import load_spec

from conftest import CONFIGS, ROOT

SPECS = [ROOT / "configs" / f"{c}.yaml" for c in CONFIGS] + [ROOT / "tests" / "specs" / "tiny_blocks.yaml"]


def exported(path: Path) -> dict[str, Any]:
    spec = load_spec(path)
    namespace: dict[str, Any] = {}
    exec(compile(to_python(spec, build(spec, device="meta"), path.name), f"{path.stem}.py", "exec"), namespace)  # noqa: S102 - our own output
    return namespace


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_the_exported_module_has_the_specs_parameters_and_output_shapes(path: Path) -> None:
    """On meta, so LLaMA's 276 GB are never allocated: names, shapes and counts, then a forward."""
    spec = load_spec(path)
    built = build(spec, device="meta")
    namespace = exported(path)
    with torch.device("meta"):
        model = namespace["make_model"]()
    with torch.no_grad():
        output = model.eval()(*[x.to("meta") for x in namespace["example_inputs"]()])
    theirs = [(n, p.shape) for n, p in model.named_parameters()]
    assert theirs == [(n, p.shape) for n, p in built.model.named_parameters()]
    outputs = [output] if isinstance(output, torch.Tensor) else list(output)
    assert [list(t.shape) for t in outputs] == trace(built.model, built.inputs).output_shapes


@pytest.mark.parametrize("config", ["lenet", "lstm_tagger", "tied_mlp", "resnet18", "tiny_blocks", "gpt2"])
def test_the_exported_module_computes_what_the_built_one_does(config: str) -> None:
    """Same weights (the state_dict moves across unchanged), same input: the same output."""
    path = (
        ROOT / "tests" / "specs" / "tiny_blocks.yaml"
        if config == "tiny_blocks"
        else ROOT / "configs" / f"{config}.yaml"
    )
    torch.manual_seed(0)
    ours = layerscope.build(path).eval()
    namespace = exported(path)
    theirs = namespace["make_model"]().eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    inputs = namespace["example_inputs"]()
    if config == "gpt2":
        inputs = tuple(x[:, :16] for x in inputs)  # 16 tokens: the same computation, in a fraction of the time
    with torch.no_grad():
        assert torch.allclose(ours(*inputs), theirs(*inputs), atol=1e-5)
    if config in ("tied_mlp", "gpt2", "tiny_blocks"):  # ties and `use:` survive: counted once, as in the spec
        assert sum(p.numel() for p in theirs.parameters()) == sum(p.numel() for p in ours.parameters())


def test_the_file_needs_only_torch_and_runs_on_its_own(cli, tmp_path: Path) -> None:
    target = tmp_path / "lenet_model.py"
    run = cli("export", "lenet", "--to", "python", "--output", str(target))
    assert run.exit_code == 0 and run.stdout == ""
    source = target.read_text(encoding="utf-8")
    assert "layerscope" not in source.replace("exported by layerscope", "")
    assert "class LeNet(nn.Module):" in source and "self.fc1 = nn.Linear(in_features=576, out_features=120)" in source
    code = "import lenet_model as m; print(tuple(m.make_model()(*m.example_inputs()).shape))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "(1, 10)", done.stderr


def test_blocks_become_classes_shared_by_identical_uses(cli) -> None:
    source = cli("export", "resnet18").stdout
    # stage 1's two blocks are alike; each later stage has a downsampling block and a plain one of its width
    assert source.count("class BasicBlock") == 1 + 3 + 3
    assert "class ResNet18(nn.Module):" in source
    assert "self.layer1 = nn.Sequential(BasicBlock(), BasicBlock())" in source


def test_a_spec_that_does_not_build_is_not_exported(cli, tmp_path: Path) -> None:
    run = cli("export", "classifier", "--input", "1x3x16x16", "--output", str(tmp_path / "c.py"))
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.startswith("layerscope: error: Classifier does not accept its input at fc")
    assert list(tmp_path.iterdir()) == []


def _under_200m(path: Path) -> bool:
    return layerscope.inspect(path, device="meta").total_params < 200_000_000


INITIALISED = [p for p in SPECS if _under_200m(p)]


@pytest.mark.parametrize("path", INITIALISED, ids=lambda p: p.stem)
def test_build_initialises_exactly_as_the_exported_torch_code_does(path: Path) -> None:
    """Under one seed, layerscope.build and the exported file's make_model hold the same weights, bit for
    bit, and draw as much from the global RNG: build() constructs each module as torch.nn does,
    initialisers included, in the same order, and its shape-reading runs draw nothing."""
    namespace = exported(path)
    torch.manual_seed(1234)
    ours = layerscope.build(path)
    after_ours = torch.random.get_rng_state()
    torch.manual_seed(1234)
    theirs = namespace["make_model"]()
    if any(isinstance(m, torch.nn.modules.lazy.LazyModuleMixin) for m in theirs.modules()):
        with torch.no_grad():  # lazy weights are made on the first call, as build() made them
            theirs(*build(load_spec(path), device="cpu").inputs)
    assert torch.equal(after_ours, torch.random.get_rng_state())
    mine, other = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(other)
    for name, tensor in mine.items():
        assert torch.equal(tensor, other[name]), name
        assert not tensor.is_floating_point() or torch.isfinite(tensor).all(), name
    assert all(m.training for m in ours.modules())
