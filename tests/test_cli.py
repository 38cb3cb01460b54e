"""CLI behaviour users rely on: the JSON contract, how SPEC is found, options, exit codes, the entry point."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def as_json(run) -> dict:
    assert run.stderr == ""
    return json.loads(run.stdout)


@pytest.mark.parametrize("command", ["inspect", "shapes", "params"])
def test_json_contract(cli, command: str) -> None:
    data = as_json(cli(command, "lenet", "--format", "json"))
    assert data["model"] == "LeNet"
    assert data["input_shapes"] == [[1, 1, 32, 32]]
    assert (data["total_params"], data["trainable_params"]) == (81_290, 81_290)
    assert data["failure"] is None
    fc1 = next(layer for layer in data["layers"] if layer["name"] == "fc1")
    assert {k: fc1[k] for k in ("name", "type", "depth", "input_shapes", "output_shapes", "num_params")} == {
        "name": "fc1", "type": "Linear", "depth": 1, "input_shapes": [[1, 576]], "output_shapes": [[1, 120]], "num_params": 69_240,
    }  # fmt: skip
    weight = data["params"][0]
    assert {k: weight[k] for k in ("name", "shape", "numel", "trainable", "shared_with")} == {
        "name": "conv1.weight", "shape": [6, 1, 5, 5], "numel": 150, "trainable": True, "shared_with": [],
    }  # fmt: skip


def test_json_failure_is_exit_1_with_the_failing_layer(cli) -> None:
    run = cli("shapes", "classifier", "--input", "1x3x16x16", "--format", "json")
    assert run.exit_code == 1
    failure = json.loads(run.stdout)["failure"]
    assert (failure["layer"], failure["type"], failure["got"]) == ("fc", "Linear", [[1, 768]])
    assert failure["source"].endswith("classifier.yaml:18:5")


def test_bundled_name_equals_the_file(cli) -> None:
    assert cli("inspect", "lenet").stdout == cli("inspect", "configs/lenet.yaml").stdout


@pytest.mark.parametrize("command", ["inspect", "shapes", "params"])
def test_a_bundled_file_name_works_anywhere_with_a_note(cli, tmp_path: Path, command: str) -> None:
    """The README's `layerscope inspect lenet.yaml`, in a directory without that file: the bundled spec,
    said on stderr, so JSON on stdout stays data; a file of that name here wins, and so does a path."""
    bundled = cli(command, "lenet", "--format", "json")
    run = cli(command, "lenet.yaml", "--format", "json", cwd=tmp_path)
    # the same report; its sources name the bundled file by its full path, not as configs/ under the cwd
    assert run.exit_code == 0 and run.stdout == bundled.stdout.replace('"configs/', f'"{ROOT}/configs/')
    assert run.stderr == f"note: no lenet.yaml here: used the bundled spec lenet ({ROOT / 'configs' / 'lenet.yaml'})\n"
    table = cli(command, "lenet.yaml", cwd=tmp_path)
    assert table.stdout == cli(command, "lenet").stdout and "used the bundled spec lenet" in table.stderr
    (tmp_path / "lenet.yaml").write_text((ROOT / "configs" / "tinymodel.yaml").read_text())
    own = cli(command, "lenet.yaml", "--format", "json", cwd=tmp_path)
    assert json.loads(own.stdout)["model"] == "TinyModel" and own.stderr == ""
    assert cli(command, "./models/lenet.yaml", cwd=tmp_path).exit_code == 2  # a path is never a bundled name
    assert "did you mean 'lenet'" in cli(command, "lenett.yaml", cwd=tmp_path).stderr


def test_the_python_api_does_not_stand_in_a_bundled_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import layerscope
    from layerscope.errors import UsageError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=r"lenet\.yaml: no such file"):
        layerscope.load("lenet.yaml")


def test_spec_may_be_omitted_when_the_directory_holds_one(cli, tmp_path: Path) -> None:
    shutil.copy(ROOT / "configs" / "lenet.yaml", tmp_path)
    run = cli("shapes", "--input", "1x1x32x32", cwd=tmp_path)
    assert run.exit_code == 0 and "LeNet — shapes" in run.stdout


def test_omitted_spec_with_several_candidates_lists_them(cli, tmp_path: Path) -> None:
    for name in ("lenet", "tinymodel"):
        shutil.copy(ROOT / "configs" / f"{name}.yaml", tmp_path)
    run = cli("params", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (
        2,
        "layerscope: error: no SPEC given and 2 specs here: lenet.yaml, tinymodel.yaml — name the one you mean\n",
    )


def test_omitted_spec_in_an_empty_directory(cli, tmp_path: Path) -> None:
    run = cli("inspect", cwd=tmp_path)
    assert run.exit_code == 2 and "no SPEC given and no .yaml spec (a file with layers:) in the current" in run.stderr


def test_spec_discovery_counts_only_specs_not_other_yaml(cli, tmp_path: Path) -> None:
    shutil.copy(ROOT / "configs" / "lenet.yaml", tmp_path)
    (tmp_path / ".pre-commit-config.yaml").write_text("repos:\n  - repo: local\n", encoding="utf-8")
    (tmp_path / "docker-compose.yaml").write_text("services:\n  web: {image: x}\n", encoding="utf-8")
    (tmp_path / "config.yml").write_text("layers_of_cake: 3\n", encoding="utf-8")
    run = cli("params", cwd=tmp_path)
    assert run.exit_code == 0 and "LeNet — parameters" in run.stdout


USAGE_ERRORS = [
    (["inspect", "lenet", "--bogus"], "No such option: --bogus", "layerscope inspect"),
    (["inspect", "lenet", "--dept", "2"], "No such option: --dept (Possible options: --depth", "layerscope inspect"),
    (["inspect", "lenet", "--depth", "x"], "Invalid value for '--depth'", "layerscope inspect"),
    (["inspect", "lenet", "--depth", "-1"], "Invalid value for '--depth'", "layerscope inspect"),
    (["inspect", "lenet", "-f", "xml"], "Invalid value for '--format'", "layerscope inspect"),
    (["inspect", "lenet", "--input"], "Option '--input' requires an argument", "layerscope inspect"),
    (["bogus"], "No such command 'bogus'", "layerscope"),
    (["diff", "lenet"], "Missing argument 'SPEC_B'", "layerscope diff"),
    (["inspect", "a", "b"], "Got unexpected extra argument", "layerscope inspect"),
]


@pytest.mark.parametrize(("args", "message", "command"), USAGE_ERRORS, ids=[" ".join(a) for a, _, _ in USAGE_ERRORS])
def test_every_usage_error_is_one_line_exit_2(cli, args: list[str], message: str, command: str) -> None:
    run = cli(*args)
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.startswith(f"layerscope: error: {message}") and run.stderr.count("\n") == 1
    assert run.stderr.endswith(f" — see '{command} --help'\n")
    assert "╭" not in run.stderr and "Usage:" not in run.stderr


def test_usage_errors_are_one_line_from_the_console_script_too(tmp_path: Path) -> None:
    run = _run(sys.executable, "-m", "layerscope", "inspect", "lenet", "--bogus", cwd=tmp_path)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == "layerscope: error: No such option: --bogus — see 'layerscope inspect --help'\n"


def test_help_shows_flags_without_a_type(cli) -> None:
    for args in (["--help"], ["inspect", "--help"], ["diff", "--help"], ["export", "--help"]):
        text = cli(*args).stdout
        assert "<bool>" not in text and "--help" in text, args
    assert "--allow-import" in cli("inspect", "--help").stdout


@pytest.mark.parametrize(
    ("alias", "dtype"), [("fp16", "float16"), ("half", "float16"), ("bf16", "bfloat16"), ("torch.float64", "float64")]
)
def test_dtype_aliases_are_accepted(cli, alias: str, dtype: str) -> None:
    data = json.loads(cli("inspect", "lenet", "--dtype", alias, "-f", "json").stdout)
    assert {p["dtype"] for p in data["params"]} == {dtype}
    shapes = cli("shapes", "lstm_tagger", "--input", "5:long")
    assert shapes.exit_code == 0


def test_an_unknown_dtype_gets_a_did_you_mean(cli) -> None:
    run = cli("inspect", "lenet", "--dtype", "flaot16")
    assert run.exit_code == 2
    assert run.stderr.startswith("layerscope: error: unknown --dtype 'flaot16' — did you mean 'float16'")
    run = cli("shapes", "lenet", "--input", "1x1x32x32:flaot32")
    assert run.exit_code == 2 and "did you mean 'float32'?" in run.stderr


def test_a_python_model_given_as_a_file_path(cli, tmp_path: Path) -> None:
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "helpers.py").write_text("def width():\n    return 3\n", encoding="utf-8")
    (tmp_path / "py" / "models.py").write_text(
        "import torch.nn as nn\nfrom helpers import width  # a file beside it, as python py/models.py finds it\n\n"
        "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, width())\n\n"
        "    def forward(self, x):\n        return self.fc(x)\n",
        encoding="utf-8",
    )
    run = cli("shapes", "py/models.py:Net", "--allow-import", "--input", "2x4", "-f", "json", cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["output_shapes"] == [[2, 3]]
    absolute = cli("params", f"{tmp_path / 'py' / 'models.py'}:Net", "--allow-import", "-f", "json")
    assert json.loads(absolute.stdout)["total_params"] == 15
    refused = cli("shapes", "py/models.py:Net", "--input", "2x4", cwd=tmp_path)
    assert refused.exit_code == 2 and "add --allow-import" in refused.stderr
    missing = cli("shapes", "py/nope.py:Net", "--allow-import", cwd=tmp_path)
    assert (
        missing.stderr == "layerscope: error: py/nope.py: no such file — name a .py file, as path/to/models.py:Class\n"
    )
    typo = cli("shapes", "py/models.py:Nett", "--allow-import", cwd=tmp_path)
    assert typo.exit_code == 2 and "did you mean 'Net'?" in typo.stderr


def test_depth_limits_the_tree(cli) -> None:
    lines = cli("inspect", "classifier", "--depth", "1").stdout.splitlines()
    assert [line.split()[0] for line in lines[4:8]] == ["Classifier", "convnet", "flatten", "fc"]
    assert lines[8].strip() == ""
    assert "conv1" in cli("inspect", "classifier", "--depth", "2").stdout


def test_input_override_with_dtype(cli) -> None:
    data = as_json(cli("shapes", "lstm_tagger", "--input", "12:int64", "--format", "json"))
    assert data["input_shapes"] == [[12]]
    assert data["output_shapes"] == [[12, 3]]


def test_inferred_dims_follow_the_input(cli) -> None:
    # conv in_channels and the Linear in-dims are inferred, so a 1x3x64x64 input simply builds bigger
    data = as_json(cli("inspect", "exercise_convnet", "--input", "1x3x64x64", "--format", "json"))
    assert data["layers"][1]["num_params"] == 3 * 9 * 9 + 9
    assert data["output_shapes"] == [[1, 10]]


def test_failed_build_says_what_is_missing_from_the_totals(cli) -> None:
    run = cli("inspect", "lenet", "--input", "1x1x28x28")
    assert run.exit_code == 1
    assert (
        "note: fc1: building stopped here; 4 later layer(s) (relu_2, fc2, relu_3, fc3) are not in the totals"
        in run.stdout
    )


def test_warnings_from_torch_become_notes(cli) -> None:
    data = as_json(cli("inspect", "tinymodel", "--format", "json"))
    assert data["notes"] == [
        {
            "layer": "softmax",
            "message": "Implicit dimension choice for softmax has been deprecated. Change the call to include dim=X as an argument.",
        }
    ]


def test_meta_device_gives_the_same_tables(cli) -> None:
    assert cli("inspect", "lenet", "--device", "meta").stdout == cli("inspect", "lenet").stdout


def test_version(cli) -> None:
    from layerscope import __version__

    assert cli("--version").stdout == f"layerscope {__version__}\n"


# The console script itself, as installed: a few real subprocess runs.


def _script() -> str:
    found = shutil.which("layerscope", path=str(Path(sys.executable).parent)) or shutil.which("layerscope")
    assert found, "the layerscope console script is not installed"
    return found


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=120, check=False)


def test_console_script_inspects_a_bundled_spec(tmp_path: Path) -> None:
    run = _run(_script(), "inspect", "lenet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no torch warnings leak into the output
    assert run.stdout == (ROOT / "tests" / "golden" / "lenet.inspect.txt").read_text(encoding="utf-8")


def test_console_script_exit_codes(tmp_path: Path) -> None:
    assert _run(_script(), "shapes", "classifier", "--input", "1x3x16x16", cwd=tmp_path).returncode == 1
    bad = _run(_script(), "inspect", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_the_entry_point_ends_at_once_but_keeps_output_and_exit_status(tmp_path: Path) -> None:
    """run() skips the interpreter's teardown once torch is loaded: nothing printed may be lost."""
    ok = _run(sys.executable, "-m", "layerscope", "inspect", "resnet18", "-f", "json", cwd=tmp_path)
    assert ok.returncode == 0 and json.loads(ok.stdout)["total_params"] == 11_689_512
    failed = _run(sys.executable, "-m", "layerscope", "shapes", "configs/classifier.yaml", "--input", "1x3x16x16")
    assert failed.returncode == 1 and failed.stderr.startswith(
        "configs/classifier.yaml:18:5: fc (Linear) does not accept"
    )
    assert failed.stdout == (ROOT / "tests" / "golden" / "classifier_16x16.shapes.txt").read_text()  # every line
    bad = _run(sys.executable, "-m", "layerscope", "inspect", "lenet", "--input", "1xq", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("layerscope: error:") and "Traceback" not in bad.stderr


def test_python_dash_m(tmp_path: Path) -> None:
    run = _run(sys.executable, "-m", "layerscope", "params", "single_neuron", cwd=tmp_path)
    assert run.returncode == 0 and "neuron.weight" in run.stdout


@pytest.mark.parametrize("args", [["--help"], ["list"], ["inspect", "--help"]])
def test_help_and_list_do_not_import_torch(args: list[str]) -> None:
    code = f"import sys; from layerscope.cli import app; sys.argv = ['layerscope', *{args!r}]\ntry:\n    app()\nexcept SystemExit:\n    pass\nprint('TORCH', 'torch' in sys.modules)"
    run = _run(sys.executable, "-c", code)
    assert run.stdout.strip().endswith("TORCH False"), run.stdout[-300:] + run.stderr


@pytest.mark.parametrize(
    ("args", "costly"),
    [
        (["lenet"], ["torch._dynamo", "sympy"]),  # small: real CPU tensors, no meta machinery at all
        (["resnet18", "--device", "meta"], ["torch._dynamo"]),  # meta imports sympy (~0.25 s), not dynamo (~0.8 s)
        (["transformer_encoder", "--device", "cpu"], ["torch._dynamo", "sympy"]),
    ],
)
def test_inspect_imports_none_of_torchs_slow_lazy_modules(args: list[str], costly: list[str]) -> None:
    code = (
        f"import sys; from layerscope.cli import app; sys.argv = ['layerscope', 'inspect', *{args!r}]\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        f"print('IMPORTED', [m for m in {costly!r} if m in sys.modules])"
    )
    run = _run(sys.executable, "-c", code)
    assert run.stdout.strip().endswith("IMPORTED []"), run.stdout[-300:] + run.stderr


def test_shapes_takes_depth_too(cli) -> None:
    shallow = cli("shapes", "transformer_encoder", "--depth", "2").stdout
    assert "layers.0" in shallow and "self_attn" not in shallow
    assert "self_attn" in cli("shapes", "transformer_encoder", "--depth", "3").stdout


def test_a_trillion_parameters_inspect_on_meta_without_allocating(tmp_path: Path) -> None:
    (tmp_path / "trillion.yaml").write_text(
        "input: {shape: [1, 1000000]}\nlayers:\n  - {name: fc, op: Linear, out_features: 1000000}\n"
    )
    code = (
        "import json, resource, sys; from layerscope.cli import app; sys.argv = ['layerscope', 'inspect', 'trillion.yaml', '-f', 'json']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        # this program's own peak (VmHWM, KB); ru_maxrss would carry over pytest's at the fork on Linux
        "status = open('/proc/self/status').read() if sys.platform == 'linux' else ''\n"
        "peak = [l.split()[1] for l in status.splitlines() if l.startswith('VmHWM:')]\n"
        "print(peak[0] if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    run = _run(sys.executable, "-c", code, cwd=tmp_path)
    data = json.loads(run.stdout)
    assert (data["total_params"], data["device"]) == (1_000_001_000_000, "meta")
    assert int(run.stderr.strip().splitlines()[-1]) < 1_000_000  # KB: far below the 4 TB the weights would take


def test_shell_completion_offers_bundled_specs_and_local_files(tmp_path: Path) -> None:
    (tmp_path / "llama_mine.yaml").write_text("layers: []\n")
    env = {
        **os.environ,
        "_LAYERSCOPE_COMPLETE": "complete_bash",
        "COMP_WORDS": "layerscope inspect ll",
        "COMP_CWORD": "2",
    }
    run = subprocess.run([_script()], capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert run.stdout.split() == ["llama2_70b", "llama_7b", "llama_mine.yaml"]
    shown = _run(_script(), "--show-completion", "bash", cwd=tmp_path)
    assert shown.returncode == 0 and "_LAYERSCOPE_COMPLETE=complete_bash" in shown.stdout
    assert "--install-completion" in _run(_script(), "--help", cwd=tmp_path).stdout


def test_two_python_files_with_their_own_helpers_are_two_models(cli, tmp_path: Path) -> None:
    """v2/models.py imports v2/helpers.py, not the v1/helpers.py imported a moment before."""
    for version, width in (("v1", 16), ("v2", 26)):
        (tmp_path / version).mkdir()
        (tmp_path / version / "helpers.py").write_text(f"W = {width}\n", encoding="utf-8")
        (tmp_path / version / "models2.py").write_text(
            "import torch.nn as nn\nfrom helpers import W\n\n\nclass Net(nn.Sequential):\n"
            "    def __init__(self):\n        super().__init__(nn.Linear(8, W), nn.ReLU(), nn.Linear(W, 2))\n",
            encoding="utf-8",
        )
    run = cli(
        "diff", "v1/models2.py:Net", "v2/models2.py:Net", "--allow-import", "-i", "2x8", "-f", "json", cwd=tmp_path
    )
    assert run.exit_code == 1
    data = json.loads(run.stdout)
    assert (data["before"]["total_params"], data["after"]["total_params"]) == (178, 288)


def test_a_python_file_without_its_class_is_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text("import torch\n", encoding="utf-8")
    run = cli("inspect", "models.py", "--allow-import", cwd=tmp_path)
    assert (run.exit_code, run.stderr) == (
        2,
        "layerscope: error: models.py is a Python file: name the model in it — models.py:ClassOrFactory, with"
        " --allow-import\n",
    )


def test_more_inputs_than_the_spec_takes_is_an_error(cli) -> None:
    run = cli("inspect", "lenet", "--input", "1x1x32x32", "--input", "3x3")
    assert (run.exit_code, run.stderr) == (
        2,
        "layerscope: error: LeNet takes 1 input(s) (input), got 2 --input — give one --input per input of the spec,"
        " in its order\n",
    )


def test_diff_names_its_own_options_in_a_hint(cli, tmp_path: Path) -> None:
    spec = tmp_path / "two.yaml"
    spec.write_text(
        "name: Small\ninput: {shape: [1, 4]}\nlayers:\n  - {name: fc, op: Linear, out_features: 2}\n---\n"
        "name: Big\ninput: {shape: [1, 4]}\nlayers:\n  - {name: fc, op: Linear, out_features: 8}\n",
        encoding="utf-8",
    )
    run = cli("diff", str(spec), str(spec))
    assert run.exit_code == 2 and run.stderr.endswith("— pick one with --model-a NAME\n")


def test_usage_errors_speak_plainly(cli) -> None:
    assert "'--depth' / '-d': not a whole number — see" in cli("inspect", "lenet", "--depth", "two").stderr
    bad_format = cli("inspect", "lenet", "-f", "xml").stderr
    assert (
        "Value error" not in bad_format and "'xml' is not one of 'table', 'json', 'markdown', 'csv' — see" in bad_format
    )
    assert "requires an argument — see 'layerscope inspect --help'" in cli("inspect", "lenet", "--depth").stderr
    assert cli("inspect", "lenet", "--dtype", "long").stderr.startswith(
        "layerscope: error: --dtype 'long' is not a floating dtype"
    )


def test_coloured_tables_end_no_line_in_spaces(tmp_path: Path) -> None:
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "60"}
    env.pop("NO_COLOR", None)
    for args in (["inspect", "lenet"], ["inspect", "bn_convnet"], ["params", "tinymodel"]):
        run = subprocess.run(
            [sys.executable, "-m", "layerscope", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0 and "\x1b[" in run.stdout
        for line in run.stdout.splitlines():
            assert not re.search(r"[ \t](?:\x1b\[[0-9;]*m)*$", line), repr(line)


def test_columns_zero_or_tiny_still_prints_a_table(tmp_path: Path) -> None:
    for columns in ("0", "5"):
        env = {**os.environ, "COLUMNS": columns}
        run = subprocess.run(
            [sys.executable, "-m", "layerscope", "inspect", "lenet"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0 and "LeNet" in run.stdout and "Total" in run.stdout, (columns, run.stderr)


def test_hints_for_paths_do_not_guess_bundled_names(cli) -> None:
    assert cli("inspect", "some/models.yaml").stderr == (
        "layerscope: error: some/models.yaml: no such file — `layerscope list` shows the bundled specs\n"
    )
    assert "a Python model is path/to/file.py:ClassOrFactory" in cli("inspect", "some/models.py:").stderr
    assert "did you mean 'lenet'" in cli("inspect", "lenett.yaml").stderr


def test_diff_of_two_python_models_needs_an_input(cli) -> None:
    run = cli("diff", "tests.reference_models:LeNet", "tests.reference_models:LeNet", "--allow-import")
    assert run.exit_code == 2 and "comparing two Python models needs an input" in run.stderr
    same = cli("diff", "lenet", "lenet")
    assert same.exit_code == 0 and same.stdout.startswith("LeNet → LeNet — what changed: nothing")
