"""Golden outputs: the tables users see, for every bundled spec, at 120 columns without colour (and a
few at 60, where columns are left out and names shortened).

Regenerate after an intended change with:  python -m pytest tests/test_golden.py --update-golden
"""

from __future__ import annotations

import pytest

from conftest import CONFIGS, ROOT
from reference_models import PUBLISHED

GOLDEN = ROOT / "tests" / "golden"

CASES = [
    (f"{config}.{command}", [command, f"configs/{config}.yaml"], 0)
    for config in CONFIGS
    if config not in PUBLISHED
    for command in ("inspect", "shapes", "params")
]
# the zoo, block by block: every row of a 32-layer LLaMA would bury what a reader checks
CASES += [
    (f"{config}_depth2.inspect", ["inspect", f"configs/{config}.yaml", "--depth", "2"], 0)
    for config in sorted(PUBLISHED)
]
CASES += [
    ("classifier_16x16.shapes", ["shapes", "configs/classifier.yaml", "--input", "1x3x16x16"], 1),
    ("lenet_28x28.inspect", ["inspect", "configs/lenet.yaml", "--input", "1x1x28x28"], 1),
    ("transformer_encoder_depth2.inspect", ["inspect", "configs/transformer_encoder.yaml", "--depth", "2"], 0),
    ("list", ["list"], 0),
    ("lenet_to_exercise_convnet.diff", ["diff", "configs/lenet.yaml", "configs/exercise_convnet.yaml"], 1),
    ("tiny_blocks_depth2.inspect", ["inspect", "tests/specs/tiny_blocks.yaml", "--depth", "2"], 0),
    ("tiny_blocks.params", ["params", "tests/specs/tiny_blocks.yaml"], 0),
    ("resnet18_bfloat16.inspect", ["inspect", "configs/resnet18.yaml", "--depth", "1", "--dtype", "bfloat16"], 0),
    ("lenet_train.inspect", ["inspect", "configs/lenet.yaml", "--train"], 0),
    ("lenet_train_json.inspect", ["inspect", "configs/lenet.yaml", "--train", "--format", "json"], 0),
    (
        "bn_convnet_train_sgd.inspect",
        [
            "inspect",
            "configs/bn_convnet.yaml",
            "--train",
            "--optimizer",
            "sgd",
            "--momentum",
            "0.9",
            "--dtype",
            "bfloat16",
        ],
        0,
    ),
    (
        "gpt2_train_depth1.inspect",
        ["inspect", "configs/gpt2.yaml", "--train", "--depth", "1", "--optimizer", "adamw"],
        0,
    ),
    (
        "classifier.check",
        ["check", "configs/classifier.yaml", "-i", "1x3x32x32", "-i", "1x3x16x16", "-i", "1x1x32x32"],
        1,
    ),
]
CASES += [  # the layer graph: a chain, a residual net, and DOT
    ("lenet.graph", ["graph", "configs/lenet.yaml"], 0),
    ("resnet18.graph", ["graph", "configs/resnet18.yaml", "--format", "mermaid"], 0),
    ("lenet_dot.graph", ["graph", "configs/lenet.yaml", "--format", "dot"], 0),
    ("transformer_encoder.graph", ["graph", "configs/transformer_encoder.yaml"], 0),  # attention fed, dropouts out
    ("resnet18_rf_depth1.inspect", ["inspect", "configs/resnet18.yaml", "--depth", "1", "--rf"], 0),
]
CASES += [  # checkpoints of Python twins (tests/checkpoints/make_checkpoints.py writes them)
    ("lenet_mismatch.weights", ["weights", "configs/lenet.yaml", "tests/checkpoints/lenet_mismatch.pt"], 1),
    (
        "resnet18_torchvision.weights",
        ["weights", "configs/resnet18.yaml", "tests/checkpoints/resnet18_torchvision.pt"],
        0,
    ),
    (
        "bn_convnet_sequential.weights",
        ["weights", "configs/bn_convnet.yaml", "tests/checkpoints/bn_convnet_sequential.pt"],
        1,
    ),
]
CASES += [
    (f"{spec.stem}.shapes", ["shapes", f"tests/specs/{spec.name}"], 1)
    for spec in sorted((ROOT / "tests" / "specs").glob("bad_*.yaml"))
]


CASES += [  # `layerscope import`: a Python model's spec
    ("lenet.import", ["import", "tests.reference_models:LeNet", "--allow-import", "--input", "1x1x32x32"], 0),
    ("zoo_resnet18.import", ["import", "tests.zoo_twins:resnet18", "--allow-import", "--input", "1x3x224x224"], 0),
    ("tied.import", ["import", "tests.import_models:Tied", "--allow-import", "--input", "2x5:int64"], 0),
]

NARROW = [  # at 60 columns: the golden file's name ends in _60
    ("lenet_60.inspect", ["inspect", "configs/lenet.yaml"], 0),
    ("lenet_60.shapes", ["shapes", "configs/lenet.yaml"], 0),
    ("lenet_60.params", ["params", "configs/lenet.yaml"], 0),
    ("llama_7b_60_depth3.inspect", ["inspect", "configs/llama_7b.yaml", "--depth", "3"], 0),
    ("classifier_60.check", ["check", "configs/classifier.yaml", "-i", "1x3x32x32", "-i", "1x3x16x16"], 1),
    ("list_60", ["list"], 0),
    ("resnet18_60_rf_depth1.inspect", ["inspect", "configs/resnet18.yaml", "--depth", "1", "--rf"], 0),
]
CASES += NARROW


@pytest.mark.parametrize(("golden", "args", "exit_code"), CASES, ids=[c[0] for c in CASES])
def test_output_matches_golden(cli, update_golden: bool, golden: str, args: list[str], exit_code: int) -> None:
    run = cli(*args, width=60 if "_60" in golden else 120)
    assert run.exit_code == exit_code, run.stderr
    assert run.stderr.count("\n") == (exit_code == 1 and args[0] != "diff")  # a failure: one line on stderr
    assert all(line == line.rstrip() for line in run.stdout.splitlines())
    assert all(len(line) <= (60 if "_60" in golden else 120) for line in run.stdout.splitlines())
    path = GOLDEN / f"{golden}.txt"
    if update_golden:
        path.write_text(run.stdout, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run pytest --update-golden"
    assert run.stdout == path.read_text(encoding="utf-8")


def test_every_golden_file_is_used() -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.txt")) == sorted(c[0] for c in CASES)
