"""`layerscope diff A B`: what changed, layer by layer, between two real specs."""

from __future__ import annotations

import csv
import io
import json


def as_json(cli, *args: str) -> dict:
    run = cli("diff", *args, "--format", "json")
    assert run.exit_code in (0, 1), run.stderr
    return json.loads(run.stdout)


def test_added_activations_are_the_only_change(cli) -> None:
    data = as_json(cli, "three_layer_mlp", "three_layer_mlp_relu")
    changed = [
        (c["name"], c["change"], c["types"], c["output_shapes"]) for c in data["layers"] if c["change"] != "same"
    ]
    assert changed == [
        ("relu1", "added", [None, "ReLU"], [None, [[1, 256]]]),
        ("relu2", "added", [None, "ReLU"], [None, [[1, 128]]]),
    ]
    assert data["before"]["total_params"] == data["after"]["total_params"] == 235_146


def test_lenet_to_its_exercise_variant(cli) -> None:
    data = as_json(cli, "lenet", "exercise_convnet")
    by_name = {c["name"]: c for c in data["layers"]}
    assert by_name["fc1"]["params"] == [69_240, 486_540] and by_name["fc1"]["param_delta"] == 417_300
    assert by_name["conv1"]["output_shapes"] == [[[1, 6, 28, 28]], [[1, 9, 30, 30]]]
    assert [c["change"] for c in data["layers"]].count("added") == 4  # tanh in place of each relu
    assert data["after"]["total_params"] - data["before"]["total_params"] == sum(
        c["param_delta"] for c in data["layers"] if c["name"].count(".") == 0
    )


def test_a_spec_against_itself_changes_nothing(cli) -> None:
    data = as_json(cli, "resnet18", "resnet18")
    assert {c["change"] for c in data["layers"]} == {"same"}
    table = cli("diff", "resnet18", "resnet18").stdout
    assert f"0 added, 0 removed, 0 changed (of {len(data['layers'])})" in table and "layer1" not in table
    assert "layer1.0.conv1" in cli("diff", "resnet18", "resnet18", "--all").stdout


def test_deeper_resnet_adds_blocks_and_widens_the_head(cli) -> None:
    data = as_json(cli, "resnet18", "resnet50")
    kinds = [c["change"] for c in data["layers"]]
    assert (kinds.count("added"), kinds.count("removed")) == (115, 0)  # a row per call: a ReLU called again included
    assert data["after"]["total_params"] - data["before"]["total_params"] == 13_867_520


def test_diff_prints_every_format_and_exports(cli, tmp_path) -> None:
    rows = list(csv.reader(io.StringIO(cli("diff", "lenet", "exercise_convnet", "--format", "csv").stdout)))
    assert rows[0] == [
        "layer", "change", "type_before", "type_after", "output_shape_before", "output_shape_after",
        "params_before", "params_after", "delta_params",
    ] and len(rows) == 17  # fmt: skip
    assert rows[1] == ["conv1", "changed", "Conv2d", "Conv2d", "1x6x28x28", "1x9x30x30", "156", "90", "-66"]
    assert rows[2] == ["relu", "removed", "relu", "", "1x6x28x28", "", "0", "", "0"]
    markdown = cli("diff", "lenet", "exercise_convnet", "--format", "markdown").stdout
    assert "| fc1 | changed | Linear | 1x120 → 1x540 | 69,240 → 486,540 | +417,300 |" in markdown
    assert cli("diff", "lenet", "exercise_convnet", "--export", str(tmp_path / "d.svg")).exit_code == 1
    assert (tmp_path / "d.svg").read_text(encoding="utf-8").lstrip().startswith("<svg")


def test_a_model_that_rejects_the_input_makes_the_exit_status_1(cli) -> None:
    run = cli("diff", "convnet", "classifier", "--input", "1x3x16x16")
    assert run.exit_code == 1
    assert (
        "Classifier does not accept its input: Linear expects the last dim to be in_features=3072, got 768"
        in run.stdout
    )
    bad = cli("diff", "lenet", "nosuchspec")
    assert bad.exit_code == 2 and bad.stderr.startswith(
        "layerscope: error: 'nosuchspec' is neither a file nor a bundled spec"
    )


def test_exit_status_says_whether_the_models_differ_as_diff_does(cli) -> None:
    same = cli("diff", "lenet", "lenet")
    assert (same.exit_code, same.stderr) == (0, "")
    changed = cli("diff", "lenet", "exercise_convnet")
    assert (changed.exit_code, changed.stderr) == (1, "")
    assert json.loads(cli("diff", "lenet", "exercise_convnet", "--format", "json").stdout)["differs"] is True


def test_each_side_takes_its_own_vars(cli) -> None:
    run = cli("diff", "lenet", "lenet", "--set-b", "classes=100", "--format", "json")
    assert run.exit_code == 1
    data = json.loads(run.stdout)
    assert [(c["name"], c["params"]) for c in data["layers"] if c["change"] != "same"] == [("fc3", [850, 8500])]
    assert cli("diff", "lenet", "lenet", "--set", "classes=100").exit_code == 0  # both sides
    assert cli("diff", "lenet", "lenet", "--set-a", "classes=100", "--set-b", "classes=100").exit_code == 0


def test_models_of_one_file_are_compared_with_model_a_and_model_b(cli, tmp_path) -> None:
    spec = tmp_path / "two.yaml"
    spec.write_text(
        "name: Small\ninput: {shape: [1, 4]}\nlayers:\n  - {name: fc, op: Linear, out_features: 2}\n---\n"
        "name: Wide\ninput: {shape: [1, 4]}\nlayers:\n  - {name: fc, op: Linear, out_features: 8}\n",
        encoding="utf-8",
    )
    data = json.loads(cli("diff", str(spec), str(spec), "--model-a", "Small", "--model-b", "Wide", "-f", "json").stdout)
    assert [c["params"] for c in data["layers"]] == [[10, 40]]


def test_a_module_called_twice_has_a_row_per_call(cli) -> None:
    data = as_json(cli, "tied_mlp", "tied_mlp")
    names = [c["name"] for c in data["layers"]]
    assert "shared_again" in names or len(names) > len(set(names))


def test_a_spec_and_its_python_twin_match_layer_for_layer(cli) -> None:
    run = cli("diff", "lenet", "tests.reference_models:LeNet", "--allow-import", "--format", "json")
    assert run.exit_code == 0, run.stdout
    data = json.loads(run.stdout)
    assert {c["change"] for c in data["layers"]} == {"same"}
    assert [c["name"] for c in data["layers"]] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert data["left_out"] == ["flatten", "max_pool2d", "relu"]
    assert (
        "not compared: flatten, max_pool2d, relu"
        in cli("diff", "lenet", "tests.reference_models:LeNet", "--allow-import").stdout
    )
