"""Python-defined models on the command line: pkg.module:ClassOrFactory with --allow-import."""

from __future__ import annotations

import json

import pytest

TARGET = "tests.python_models"


def as_json(cli, *args: str) -> dict:
    run = cli(*args, "--format", "json")
    assert run.exit_code in (0, 1), run.stderr
    return json.loads(run.stdout)


def test_importing_python_code_needs_allow_import(cli) -> None:
    run = cli("inspect", f"{TARGET}:Classifier", "--input", "1x3x32x32")
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr == (
        "layerscope: error: 'tests.python_models:Classifier' names Python code, and importing it runs that code"
        " — add --allow-import to inspect a Python-defined model\n"
    )


def test_a_python_model_gives_the_report_of_its_yaml_twin(cli) -> None:
    ours = as_json(cli, "inspect", f"{TARGET}:Classifier", "--allow-import", "--input", "1x3x32x32")
    theirs = as_json(cli, "inspect", "classifier")
    for key in ("total_params", "trainable_params", "total_flops", "param_bytes", "input_shapes", "output_shapes"):
        assert ours[key] == theirs[key], key

    def weighted(data: dict) -> list[tuple]:  # layers with weights: the spec's flatten is a layer, .flatten(1) not
        return [(x["type"], x["output_shapes"], x["num_params"], x["flops"]) for x in data["layers"] if x["num_params"]]

    assert weighted(ours)[1:] == weighted(theirs)[1:]  # all but the model's own row, named after each


def test_arg_reaches_the_constructor_or_factory(cli) -> None:
    assert as_json(cli, "inspect", f"{TARGET}:Classifier", "--allow-import", "-i", "1x3x32x32", "--arg", "classes=5")[
        "output_shapes"
    ] == [[1, 5]]
    assert as_json(cli, "params", f"{TARGET}:small", "--allow-import", "-i", "3x2", "-a", "width=7")[
        "total_params"
    ] == (2 * 7 + 7 + 7 + 1)


def test_dict_list_and_tuple_outputs_are_reported(cli) -> None:
    data = as_json(cli, "shapes", f"{TARGET}:TwoHeads", "--allow-import", "-i", "2x8")
    assert data["output_shapes"] == [[2, 3], [2, 4], [2, 16], []]
    assert (
        cli("shapes", f"{TARGET}:TwoHeads", "--allow-import", "-i", "2x8").stdout.count("2x3, 2x4, 2x16, scalar") == 1
    )


def test_a_python_model_that_rejects_its_input_is_diagnosed(cli) -> None:
    run = cli("shapes", f"{TARGET}:Classifier", "--allow-import", "--input", "1x3x16x16")
    assert run.exit_code == 1
    assert "✗ fc (Linear) does not accept its input" in run.stdout
    assert "Linear expects the last dim to be in_features=3072, got 768 (input 1x768)" in run.stdout
    checked = cli("check", f"{TARGET}:Classifier", "--allow-import", "-i", "1x3x32x32", "-i", "1x3x16x16")
    assert checked.exit_code == 1 and "Classifier — which inputs fit" in checked.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([f"{TARGET}:Classifier", "-i", "2x=1x3"], "--input '2x=1x3': '2x' is not a keyword name"),
        ([f"{TARGET}:Classifier", "-i", "m=1x3", "-i", "m=1x3"], "--input names 'm' twice"),
        ([f"{TARGET}:Classifier", "-i", "m="], "--input 'm=': no shape after '='"),
        ([f"{TARGET}:small", "-i", "1x2", "-a", "width=3", "-a", "width=4"], "--arg width given twice"),
        ([f"{TARGET}:Clasifier", "-i", "1x3"], "'tests.python_models' has no 'Clasifier' — did you mean 'Classifier'?"),
        (["nowhere_at_all:Model", "-i", "1x3"], "cannot import 'nowhere_at_all': No module named 'nowhere_at_all'"),
        ([f"{TARGET}:not_a_model", "-i", "1x3"], "tests.python_models:not_a_model gave a int, not an nn.Module"),
        ([f"{TARGET}:broken", "-i", "1x3"], "tests.python_models:broken(...) raised RuntimeError: no weights here"),
        ([f"{TARGET}:small", "-i", "1x2", "--arg", "depth=3"], "tests.python_models:small: small() got an unexpected"),
        ([f"{TARGET}:small", "-i", "1x2", "--set", "width=3"], "--set and --model are for spec files"),
        ([f"{TARGET}:small", "-i", "1x2", "--dtype", "float16"], "--dtype is for spec files"),
    ],
)
def test_bad_python_targets_get_one_line_and_exit_2(cli, args: list[str], message: str) -> None:
    run = cli("inspect", *args, "--allow-import")
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.startswith(f"layerscope: error: {message}"), run.stderr
    assert run.stderr.count("\n") == 1


def test_arg_on_a_spec_file_is_an_error(cli) -> None:
    run = cli("inspect", "lenet", "--arg", "classes=3")
    assert run.exit_code == 2
    assert run.stderr.startswith("layerscope: error: --arg is for Python-defined models (pkg.module:Class)")


def test_keyword_inputs_on_the_command_line_with_realistic_values(cli) -> None:
    """Token ids are made below the vocabulary, a mask is all ones: the model raises otherwise."""
    data = as_json(
        cli, "inspect", f"{TARGET}:Tagger", "--allow-import", "-i", "2x12:int64", "-i", "attention_mask=2x12:int64"
    )
    assert data["failure"] is None and data["output_shapes"] == [[2, 12, 2]]
    assert data["input_shapes"] == [[2, 12], [2, 12]]


def test_arg_values_are_python_literals(cli) -> None:
    data = as_json(
        cli, "params", f"{TARGET}:Tagger", "--allow-import", "-a", "pad=None", "-a", "tags=[1, 2, 3]", "-a", "vocab=7"
    )
    assert data["total_params"] == 7 * 8 + 8 * 3 + 3
    text = as_json(cli, "params", f"{TARGET}:Tagger", "--allow-import", "-a", "tags=abc")  # not a literal: text
    assert text["total_params"] == 100 * 8 + 8 * 3 + 3


def test_without_input_the_module_tree_and_parameters(cli) -> None:
    run = cli("inspect", f"{TARGET}:Classifier", "--allow-import")
    assert run.exit_code == 0, run.stderr
    assert "Classifier — modules" in run.stdout and "Output shape" not in run.stdout
    assert "Total params                    30,982" in run.stdout
    assert "shapes, FLOPs and memory need an input" in run.stdout
    params = as_json(cli, "params", f"{TARGET}:Classifier", "--allow-import")
    assert params["ran"] is False and params["total_params"] == 30_982 and len(params["params"]) == 8


def test_a_torchscript_module_gets_its_parameters_and_a_note(cli) -> None:
    run = cli("inspect", f"{TARGET}:scripted", "--allow-import", "-i", "3x2")
    assert run.exit_code == 0, run.stderr
    assert "Total params" in run.stdout and "TorchScript module takes no hooks" in run.stdout


def test_a_failure_points_at_the_python_line_that_called_the_layer(cli) -> None:
    data = as_json(cli, "shapes", f"{TARGET}:Classifier", "--allow-import", "-i", "1x3x16x16")["failure"]
    assert data["kind"] == "input" and data["error_type"] == "RuntimeError"
    assert (
        data["called_at"] == "tests/python_models.py:16 in Classifier.forward: return self.fc(self.convs(x).flatten(1))"
    )
    assert data["hints"][0] == "Linear(in_features=768, …) would accept this input"  # its constructor's terms


def test_a_bug_in_the_models_code_is_not_blamed_on_the_input(cli) -> None:
    """The tutorial's own `import torch.functional as F`: an AttributeError in forward."""
    run = cli("inspect", f"{TARGET}:Buggy", "--allow-import", "-i", "1x1x8x8")
    assert run.exit_code == 1
    assert "✗ Buggy (Buggy): Buggy.forward raised AttributeError at tests/python_models.py:" in run.stdout
    assert "Raised at   tests/python_models.py:" in run.stdout and "in Buggy.forward: return F.max_pool2d" in run.stdout
    assert "does not accept its input" not in run.stdout and "Fix" not in run.stdout
    debug = cli("inspect", f"{TARGET}:Buggy", "--allow-import", "-i", "1x1x8x8", "--debug")
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert "\nAttributeError: module 'torch.functional' has no attribute 'max_pool2d'\n" in debug.stderr


TUTORIAL = """import torch
import torch.nn as nn
import torch.functional as F


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 6 * 6)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))
"""


def test_the_tutorials_own_bug_names_the_line_that_raised(cli, tmp_path) -> None:
    """The "Building models" tutorial as printed: `import torch.functional as F` at the top of models.py."""
    (tmp_path / "tutorial_models.py").write_text(TUTORIAL)
    args = ("shapes", "tutorial_models:Net", "--allow-import", "--input", "1x1x32x32")
    run = cli(*args, cwd=tmp_path)
    assert run.exit_code == 1 and run.stderr == (
        "tutorial_models.py:16: Net (Net): Net.forward raised AttributeError: module 'torch.functional' has no"
        " attribute 'max_pool2d' — a bug in the model's code\n"
    )
    lines = [line.strip() for line in run.stdout.splitlines()]
    assert "✗ Net (Net): Net.forward raised AttributeError at tutorial_models.py:16, a bug in the model's code" in lines
    assert any(line.split() == ["Raised", "at", "tutorial_models.py:16", "in", "Net.forward:", *TUTORIAL.splitlines()[15].split()] for line in lines)  # fmt: skip
    assert "does not accept its input" not in run.stdout and "Fix" not in run.stdout
    data = json.loads(cli(*args, "--format", "json", cwd=tmp_path).stdout)["failure"]
    assert (data["kind"], data["error_type"], data["error"]) == (
        "bug",
        "AttributeError",
        "module 'torch.functional' has no attribute 'max_pool2d'",
    )
    debug = cli(*args, "--debug", cwd=tmp_path)
    assert debug.exit_code == 1 and debug.stderr.startswith("Traceback (most recent call last):")
    assert 'tutorial_models.py", line 16, in forward' in debug.stderr
    assert "\nAttributeError: module 'torch.functional' has no attribute 'max_pool2d'\n" in debug.stderr


@pytest.mark.parametrize(
    ("error", "bug"),
    [
        (AttributeError("module 'torch.functional' has no attribute 'max_pool2d'"), True),
        (NameError("name 'nn' is not defined"), True),
        (ModuleNotFoundError("No module named 'einops'"), True),
        (TypeError("unsupported operand type(s) for +: 'int' and 'str'"), True),
        (TypeError("forward() missing 1 required positional argument: 'mask'"), False),
        (TypeError("conv2d() received an invalid combination of arguments"), False),
        (AttributeError("'NoneType' object has no attribute 'shape'"), False),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (KeyError("scale"), True),
        (RecursionError("maximum recursion depth exceeded"), True),
        (NotImplementedError('Module [Net] is missing the required "forward" function'), True),
        (TypeError("unsupported operand type(s) for +: 'Tensor' and 'str'"), True),
        (TypeError("unsupported operand type(s) for *: 'NoneType' and 'Tensor'"), False),
        (ValueError("Expected input batch_size (4) to match target batch_size (2)"), False),
    ],
)
def test_what_counts_as_the_models_own_bug(error: BaseException, bug: bool) -> None:
    from layerscope.report.diagnose import model_bug

    assert model_bug(error) is bug


def test_a_seed_out_of_range_and_a_missing_dependency_get_one_line(cli, tmp_path, monkeypatch) -> None:
    run = cli("shapes", f"{TARGET}:Classifier", "--allow-import", "-i", "1x3x32x32", "--seed", str(2**70))
    assert run.exit_code == 2 and run.stderr.startswith(
        "layerscope: error: seed 1180591620717411303424 is out of range"
    )
    (tmp_path / "needs_dep.py").write_text("import not_installed_anywhere_xyz\n")
    monkeypatch.chdir(tmp_path)
    run = cli("params", "needs_dep:Model", "--allow-import")
    assert run.exit_code == 2
    assert run.stderr == (
        "layerscope: error: importing 'needs_dep' failed: No module named 'not_installed_anywhere_xyz'"
        " — install 'not_installed_anywhere_xyz'\n"
    )
