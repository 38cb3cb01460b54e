"""--format table|json|markdown|csv on every command, and --export FILE.svg|html."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

COMMANDS = [
    ["inspect", "lenet"],
    ["shapes", "lenet"],
    ["params", "tied_mlp"],
    ["check", "lenet", "-i", "1x1x32x32", "-i", "1x1x28x28"],
    ["list"],
]
FAILS = {"check"}  # one of its candidates does not fit: exit status 1 in every format


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "csv"])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_every_command_prints_every_format(cli, args: list[str], fmt: str) -> None:
    run = cli(*args, "--format", fmt)
    assert run.exit_code == (1 if args[0] in FAILS else 0), run.stderr
    assert run.stdout.strip()
    if args[0] in FAILS:  # the failure is told on stderr in one line, whatever the format
        assert run.stderr == (
            "1x1x28x28: configs/lenet.yaml:15:5: fc1 (Linear) does not accept its input: Linear expects the last"
            " dim to be in_features=576, got 400 (input 1x400) — set in_features: 400 to accept this input (or"
            " leave it out: layerscope infers it)\n"
        )
    else:
        assert run.stderr == ""


def markdown_table(text: str) -> list[list[str]]:
    """The first pipe table in `text`: header, then rows (the alignment row checked and dropped)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    end = next((i for i, r in enumerate(rows) if (i > 1 and not any(r)) or r == ["", ""]), len(rows))
    header, align, *body = rows[:end]
    assert all(set(a) <= set("-:") and a for a in align)
    return [header, *body]


def test_markdown_is_a_pipe_table_of_the_layers_by_qualified_name(cli) -> None:
    data = json.loads(cli("inspect", "resnet18", "--format", "json").stdout)
    text = cli("inspect", "resnet18", "--format", "markdown").stdout
    assert text.startswith("**ResNet18 — layers**\n\n| Layer | Type | Output shape | Params | % of total | FLOPs |\n")
    assert "| --- | --- | --- | ---: | ---: | ---: |" in text  # numbers right-aligned
    rows = markdown_table(text)[1:]
    names = [r[0] for r in rows]
    assert names == ["ResNet18", *[layer["name"] for layer in data["layers"][1:]]]
    assert [r[1] for r in rows] == [layer["type"] for layer in data["layers"]]
    assert "| Total params | 11,689,512 |" in text and "| &nbsp;&nbsp;Parameters | 44.59 MiB |" in text


def test_markdown_keeps_a_diagnosis_as_a_text_block(cli) -> None:
    run = cli("inspect", "classifier", "--input", "1x3x16x16", "--format", "markdown")
    assert run.exit_code == 1
    assert "```text\n✗ fc (Linear) does not accept its input" in run.stdout
    assert "| fc | Linear | failed |" in run.stdout


def test_csv_is_data_a_header_of_stable_names_then_raw_values(cli) -> None:
    data = json.loads(cli("params", "gpt2", "--format", "json").stdout)
    rows = list(csv.reader(io.StringIO(cli("params", "gpt2", "--format", "csv").stdout)))
    assert rows[0] == ["parameter", "shape", "numel", "dtype", "trainable", "tied_to"]
    assert [r[0] for r in rows[1:]] == [p["name"] for p in data["params"]]
    assert rows[1] == ["wte.weight", "50257x768", "38597376", "float32", "true", "lm_head.weight"]
    assert rows[-1] == ["lm_head.weight", "50257x768", "38597376", "float32", "true", "wte.weight"]
    shapes = list(csv.DictReader(io.StringIO(cli("shapes", "lstm_tagger", "--format", "csv").stdout)))
    assert shapes[3] == {"layer": "lstm", "type": "LSTM", "input_shape": "5x1x6", "output_shape": "5x1x6, 1x1x6, 1x1x6"}


def test_csv_layers_match_the_json_report_number_for_number(cli) -> None:
    data = json.loads(cli("inspect", "resnet18", "--format", "json").stdout)
    rows = list(csv.DictReader(io.StringIO(cli("inspect", "resnet18", "--format", "csv").stdout)))
    assert list(rows[0]) == ["layer", "type", "output_shape", "params", "percent_of_total", "flops"]
    assert len(rows) == len(data["layers"])
    for row, layer in zip(rows, data["layers"], strict=True):
        assert row["layer"] == (layer["name"] or "ResNet18")
        if layer["shared_with"] is None:
            assert int(row["params"]) == layer["num_params"]
            assert float(row["percent_of_total"]) == pytest.approx(
                100 * layer["num_params"] / data["total_params"], abs=1e-4
            )
        else:
            assert row["params"] == row["percent_of_total"] == ""
        assert int(row["flops"]) == layer["flops"]


def test_csv_of_a_failed_run_leaves_what_did_not_run_empty_and_says_why_on_stderr(cli) -> None:
    run = cli("inspect", "lenet", "--input", "1x1x28x28", "--format", "csv")
    assert run.exit_code == 1
    rows = {r["layer"]: r for r in csv.DictReader(io.StringIO(run.stdout))}
    assert rows["conv1"] == {
        "layer": "conv1", "type": "Conv2d", "output_shape": "1x6x24x24", "params": "156",
        "percent_of_total": "0.222", "flops": "172800",
    }  # fmt: skip
    assert rows["fc1"]["output_shape"] == rows["fc1"]["flops"] == "" and rows["fc1"]["params"] == "69240"
    assert "failed" not in run.stdout and "-" not in {c for r in rows.values() for c in r.values()}
    assert run.stderr.count("\n") == 1 and "fc1 (Linear) does not accept its input" in run.stderr


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_a_failed_run_is_one_line_on_stderr_in_every_format(cli, fmt: str) -> None:
    run = cli("shapes", "classifier", "--input", "1x3x16x16", "--format", fmt)
    assert run.exit_code == 1
    assert run.stderr.endswith(
        "classifier.yaml:18:5: fc (Linear) does not accept its input: Linear expects the last dim to be"
        " in_features=3072, got 768 (input 1x768) — set in_features: 768 to accept this input (or leave it out:"
        " layerscope infers it)\n"
    )
    assert run.stderr.count("\n") == 1


def test_list_as_json_names_every_bundled_spec(cli) -> None:
    specs = json.loads(cli("list", "--format", "json").stdout)
    assert {"lenet", "llama2_70b"} <= {s["name"] for s in specs}
    assert all(Path(s["path"]).is_file() and s["description"] for s in specs)


@pytest.mark.parametrize("suffix", [".svg", ".html"])
def test_export_writes_rich_s_svg_or_html_beside_the_printed_format(cli, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"report{suffix}"
    run = cli("inspect", "lenet", "--export", str(target), "--format", "json")
    assert run.exit_code == 0 and json.loads(run.stdout)["model"] == "LeNet"
    text = target.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<svg" if suffix == ".svg" else "<!DOCTYPE html>")
    assert "conv1" in text and "81,290" in text
    assert target.stat().st_mode & 0o777 != 0o600  # an ordinary file, not the temporary one's mode
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_export_refuses_other_file_types_and_unwritable_places(cli, tmp_path: Path) -> None:
    run = cli("inspect", "lenet", "--export", str(tmp_path / "report.pdf"))
    assert (run.exit_code, run.stdout) == (2, "")
    assert (
        run.stderr
        == "layerscope: error: cannot export to 'report.pdf' — name a .svg or .html file, e.g. --export report.svg\n"
    )
    run = cli("inspect", "lenet", "--export", str(tmp_path / "missing" / "report.svg"))
    assert run.exit_code == 2 and run.stderr.startswith("layerscope: error: cannot write ")
    assert list(tmp_path.iterdir()) == []  # nothing partial left behind


def test_no_color_and_the_terminals_width_are_respected() -> None:
    import os
    import re
    import subprocess
    import sys

    def run(**env: str) -> str:
        args = [sys.executable, "-m", "layerscope", "shapes", "classifier", "--input", "1x3x16x16"]
        return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **env}, check=False).stdout

    colour = re.compile(r"\x1b\[[0-9;]*3[0-9]m|\x1b\[[0-9;]*9[0-7]m")  # foreground colours, not bold
    assert colour.search(run(FORCE_COLOR="1", COLUMNS="120"))  # the failure is red in a terminal...
    assert not colour.search(run(FORCE_COLOR="1", NO_COLOR="1", COLUMNS="120"))  # ...but not under NO_COLOR
    narrow = run(COLUMNS="60")
    assert max(len(line) for line in narrow.splitlines()) <= 60  # a narrow terminal: folded to fit


def test_csv_leaves_a_passing_runs_notes_on_stderr(cli) -> None:
    run = cli("inspect", "tinymodel", "--format", "csv")
    assert run.exit_code == 0 and run.stdout.startswith("layer,type,output_shape")
    assert run.stderr.startswith("note: softmax: Implicit dimension choice for softmax") and run.stderr.count("\n") == 1
