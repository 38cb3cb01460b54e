"""`layerscope weights SPEC CHECKPOINT`: checkpoints saved from the Python twins load into the specs' models."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from zoo_twins import TWINS

import layerscope

from conftest import ROOT
from reference_models import REFERENCES

# the tutorial models whose spec names its layers as the Python source does
SAME_NAMES = ["tinymodel", "lenet", "lstm_tagger", "convnet", "classifier", "nest_mlp", "fixed_hidden_mlp", "chimera"]


def saved(model: nn.Module, path: Path, wrap: str | None = None) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    torch.save(state if wrap is None else {"epoch": 3, wrap: state}, path)
    return state


def weights(cli, *args: str) -> tuple[int, dict[str, Any]]:
    run = cli("weights", *args, "--format", "json")
    # a mismatch is told in one line on stderr too, whatever the format
    assert (
        run.stderr == "" if run.exit_code == 0 else "does not load into" in run.stderr and run.stderr.count("\n") == 1
    )
    return run.exit_code, json.loads(run.stdout)


def twin(config: str) -> nn.Module:
    """The reference model, its lazy layers made by one forward on its input."""
    factory, inputs = REFERENCES[config]
    model = factory()
    with torch.no_grad():
        model(*inputs())
    return model


@pytest.mark.parametrize("config", SAME_NAMES)
def test_a_tutorial_models_checkpoint_matches_and_loads_strictly(cli, tmp_path: Path, config: str) -> None:
    state = saved(twin(config), tmp_path / "ckpt.pt")
    code, data = weights(cli, f"configs/{config}.yaml", str(tmp_path / "ckpt.pt"))
    assert code == 0 and data["matches"]
    assert data["counts"] == {"missing": 0, "unexpected": 0, "shape mismatch": 0, "ok": len(state)}
    layerscope.build(ROOT / "configs" / f"{config}.yaml").load_state_dict(state, strict=True)


def test_a_torchvision_resnet18_checkpoint_loads_strictly(cli, tmp_path: Path) -> None:
    """Real weights, saved and read back: torchvision's layout, one ReLU module called twice per block."""
    torch.manual_seed(0)
    python = TWINS["resnet18"]().eval()
    state = saved(python, tmp_path / "resnet18.pt")
    code, data = weights(cli, "configs/resnet18.yaml", str(tmp_path / "resnet18.pt"))
    assert code == 0 and data["counts"]["ok"] == len(state) == 122
    model = layerscope.build(ROOT / "configs" / "resnet18.yaml").eval()
    model.load_state_dict(torch.load(tmp_path / "resnet18.pt", weights_only=True), strict=True)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), python(x), atol=1e-5)


@pytest.mark.parametrize("config", ["resnet50", "alexnet"])
def test_the_zoos_twins_checkpoints_match_without_allocating(cli, tmp_path: Path, config: str) -> None:
    """Saved from the meta device: every key and shape, no data; the spec is built on meta too."""
    with torch.device("meta"):
        state = saved(TWINS[config](), tmp_path / "ckpt.pt")
    code, data = weights(cli, f"configs/{config}.yaml", str(tmp_path / "ckpt.pt"))
    assert code == 0 and data["counts"]["ok"] == len(state)


def test_a_sequential_twin_with_a_use_loads_a_spec_written_the_same_way(cli, tmp_path: Path) -> None:
    spec = tmp_path / "tied.yaml"
    spec.write_text(
        "input: {shape: [2, 4]}\nlayers:\n"
        "  - {op: LazyLinear, out_features: 8}\n  - {op: ReLU}\n  - {op: LazyLinear, out_features: 8}\n"
        "  - {op: ReLU}\n  - {use: 2}\n  - {op: ReLU}\n  - {op: LazyLinear, out_features: 1}\n",
        encoding="utf-8",
    )
    saved(twin("tied_mlp"), tmp_path / "ckpt.pt")
    code, data = weights(cli, str(spec), str(tmp_path / "ckpt.pt"))
    assert code == 0 and data["counts"]["ok"] == 8  # 0, 2, 4 (the shared module again) and 6


def test_mismatches_are_rows_and_exit_1(cli, tmp_path: Path) -> None:
    state = twin("lenet").state_dict()
    del state["fc3.bias"]
    state["extra.weight"] = torch.zeros(3)
    state["fc1.weight"] = torch.zeros(120, 400)
    torch.save(state, tmp_path / "ckpt.pt")
    code, data = weights(cli, "configs/lenet.yaml", str(tmp_path / "ckpt.pt"))
    assert code == 1 and not data["matches"]
    wrong = {r["key"]: (r["status"], r["expected"], r["found"]) for r in data["rows"] if r["status"] != "ok"}
    assert wrong == {
        "fc3.bias": ("missing", [10], None),
        "extra.weight": ("unexpected", None, [3]),
        "fc1.weight": ("shape mismatch", [120, 576], [120, 400]),
    }
    table = cli("weights", "configs/lenet.yaml", str(tmp_path / "ckpt.pt"))
    assert table.exit_code == 1
    assert "fc1.weight" in table.stdout and "120x400" in table.stdout and "1 shape mismatch" in table.stdout
    assert "conv1.weight" not in table.stdout  # matching keys only with --all
    assert "conv1.weight" in cli("weights", "configs/lenet.yaml", str(tmp_path / "ckpt.pt"), "--all").stdout


def test_the_same_tensors_under_other_names_are_pointed_out(cli, tmp_path: Path) -> None:
    saved(twin("bn_convnet"), tmp_path / "ckpt.pt")  # nn.Sequential's 0.weight …; the spec names conv1 …
    code, data = weights(cli, "configs/bn_convnet.yaml", str(tmp_path / "ckpt.pt"))
    # as torch's strict load counts them: 14 missing (a BatchNorm fills its num_batches_tracked), 16 unexpected
    assert code == 1 and (data["counts"]["missing"], data["counts"]["unexpected"]) == (14, 16)
    assert "the same tensors under other names (0.weight for conv1.weight" in data["notes"][0]


@pytest.mark.parametrize("wrap", ["state_dict", "model_state_dict", "model", "module"])
def test_a_checkpoint_dict_holding_the_state_dict_is_read_and_said_so(cli, tmp_path: Path, wrap: str) -> None:
    saved(twin("lenet"), tmp_path / "ckpt.pt", wrap=wrap)
    code, data = weights(cli, "configs/lenet.yaml", str(tmp_path / "ckpt.pt"))
    assert code == 0
    assert data["notes"] == [f"the state_dict is the checkpoint's {wrap!r} entry (it also holds epoch)"]


def write_safetensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    """The format by hand (u64 header length, JSON header, data): no dependency on the safetensors package."""
    header, offset = {}, 0
    for key, tensor in state.items():
        size = tensor.numel() * 4
        header[key] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))


def test_safetensors_are_read_from_their_header(cli, tmp_path: Path) -> None:
    state = twin("lenet").state_dict()
    write_safetensors(tmp_path / "model.safetensors", state)
    code, data = weights(cli, "configs/lenet.yaml", str(tmp_path / "model.safetensors"))
    assert code == 0 and data["counts"]["ok"] == len(state)


def test_safetensors_written_by_the_package_are_read_too(cli, tmp_path: Path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    safetensors_torch.save_file(twin("tinymodel").state_dict(), tmp_path / "model.safetensors")
    code, data = weights(cli, "configs/tinymodel.yaml", str(tmp_path / "model.safetensors"))
    assert code == 0 and data["counts"]["ok"] == 4


def test_the_legacy_torch_format_is_read(cli, tmp_path: Path) -> None:
    torch.save(twin("lenet").state_dict(), tmp_path / "ckpt.pt", _use_new_zipfile_serialization=False)
    assert weights(cli, "configs/lenet.yaml", str(tmp_path / "ckpt.pt"))[0] == 0


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("this ran",))


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    torch.save(twin("lenet"), tmp_path / "whole.pt")
    (tmp_path / "code.pt").write_bytes(pickle.dumps(Evil()))
    (tmp_path / "text.pt").write_text("not a checkpoint", encoding="utf-8")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", 1 << 62) + b"{}")
    (tmp_path / "garbage.safetensors").write_bytes(struct.pack("<Q", 4) + b"\xff\xfe{[")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    torch.save({"epoch": 1}, tmp_path / "no_tensors.pt")
    (tmp_path / "folder.pt").mkdir()
    return {
        "whole module": (tmp_path / "whole.pt", "holds pickled Python objects (reference_models.LeNet)"),
        "pickled code": (tmp_path / "code.pt", "holds pickled Python objects ("),
        "text": (tmp_path / "text.pt", "is not a torch checkpoint: not a zip archive or pickle"),
        "empty safetensors": (tmp_path / "empty.safetensors", "is not a safetensors file: no header"),
        "huge header": (tmp_path / "huge.safetensors", "is not a safetensors file: no header"),
        "not JSON": (tmp_path / "garbage.safetensors", "is not a safetensors file: its header is not JSON"),
        "a list": (tmp_path / "list.pt", "holds a list, not a state_dict"),
        "no tensors": (tmp_path / "no_tensors.pt", "holds no tensors"),
        "a directory": (tmp_path / "folder.pt", "is a directory, not a checkpoint file"),
        "missing": (tmp_path / "nothere.pt", "no checkpoint file"),
    }


def test_a_file_that_is_no_checkpoint_is_one_line_and_exit_2(cli, tmp_path: Path, capfd) -> None:
    for what, (path, message) in bad_files(tmp_path).items():
        run = cli("weights", "configs/lenet.yaml", str(path))
        assert run.exit_code == 2, what
        assert run.stderr.startswith(f"layerscope: error: {str(path)!r} ") or "no checkpoint file" in run.stderr, what
        assert message in run.stderr and run.stderr.count("\n") == 1, (what, run.stderr)
    assert "this ran" not in capfd.readouterr().out  # weights_only: the pickled call never ran


def test_the_safetensors_header_budget(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_safetensors(tmp_path / "model.safetensors", twin("lenet").state_dict())
    monkeypatch.setenv("LAYERSCOPE_MAX_CHECKPOINT_HEADER", "100")
    run = cli("weights", "configs/lenet.yaml", str(tmp_path / "model.safetensors"))
    assert run.exit_code == 2
    assert "set LAYERSCOPE_MAX_CHECKPOINT_HEADER to change it" in run.stderr


def test_a_model_that_rejects_its_input_is_exit_1_in_one_line(cli, tmp_path: Path) -> None:
    saved(twin("lenet"), tmp_path / "ckpt.pt")
    run = cli("weights", "configs/lenet.yaml", str(tmp_path / "ckpt.pt"), "--input", "1x1x28x28")
    assert run.exit_code == 1
    assert run.stderr.startswith("layerscope: error: LeNet does not accept its input at fc1")


def test_the_python_api_takes_a_spec_or_a_module(tmp_path: Path) -> None:
    python = twin("lenet")
    saved(python, tmp_path / "ckpt.pt")
    assert layerscope.check_weights("lenet", tmp_path / "ckpt.pt").matches
    check = layerscope.check_weights(nn.Sequential(nn.Linear(2, 2)), tmp_path / "ckpt.pt")
    assert (check.model, check.count("missing"), check.count("unexpected")) == ("Sequential", 2, 10)


def test_a_python_model_on_the_command_line(cli, tmp_path: Path) -> None:
    saved(twin("lenet"), tmp_path / "ckpt.pt")
    run = cli("weights", "reference_models:LeNet", str(tmp_path / "ckpt.pt"), "--allow-import", cwd=ROOT / "tests")
    assert run.exit_code == 0, run.stderr
    assert "✓ loads with load_state_dict(strict=True)" in run.stdout


def test_the_7b_spec_is_checked_on_meta(cli, tmp_path: Path) -> None:
    """LLaMA-7B's 27 GB are never allocated: the spec is built on meta, the checkpoint holds shapes only."""
    with torch.device("meta"):
        torch.save({"tok_embeddings.weight": torch.empty(32000, 4096)}, tmp_path / "ckpt.pt")
    code, data = weights(cli, "configs/llama_7b.yaml", str(tmp_path / "ckpt.pt"))
    assert code == 1 and data["counts"]["missing"] > 200


class TiedMLP(nn.Module):  # configs/tied_mlp.yaml as Python usually writes it: one module, called twice
    def __init__(self) -> None:
        super().__init__()
        self.fc_in = nn.Linear(4, 8)
        self.shared = nn.Linear(8, 8)
        self.fc_out = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(torch.relu(self.shared(torch.relu(self.shared(torch.relu(self.fc_in(x)))))))


def test_a_module_called_twice_loads_into_a_use_without_a_name(cli, tmp_path: Path) -> None:
    saved(TiedMLP(), tmp_path / "ckpt.pt")
    code, data = weights(cli, "configs/tied_mlp.yaml", str(tmp_path / "ckpt.pt"))  # `name: shared_again` on its use:
    assert code == 1 and [r["key"] for r in data["rows"] if r["status"] == "missing"] == [
        "shared_again.weight",
        "shared_again.bias",
    ]
    assert "(shared_again.weight is shared.weight, shared_again.bias is shared.bias)" in data["notes"][0]
    text = (ROOT / "configs" / "tied_mlp.yaml").read_text(encoding="utf-8")
    (tmp_path / "tied.yaml").write_text(text.replace("{name: shared_again, use: shared}", "{use: shared}"))
    code, data = weights(cli, str(tmp_path / "tied.yaml"), str(tmp_path / "ckpt.pt"))
    assert code == 0 and data["counts"]["ok"] == 6


def test_a_dataparallel_prefix_is_named_with_its_fix(cli, tmp_path: Path) -> None:
    state = {f"module.{k}": v for k, v in twin("lenet").state_dict().items()}
    torch.save(state, tmp_path / "dp.pt")
    code, data = weights(cli, "lenet", str(tmp_path / "dp.pt"))
    assert code == 1 and data["counts"]["missing"] == data["counts"]["unexpected"] == 10
    assert data["notes"] == [
        "every unexpected key is a missing one with 'module.' in front (module.conv1.weight for conv1.weight, …): "
        "DataParallel or DistributedDataParallel saved it; strip 'module.' from the keys before loading"
    ]


def test_a_pickle_naming_code_is_refused_by_name_without_torchs_advice(cli, tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):
            import os

            return (os.system, ("touch pwned",))

    torch.save({"x": Boom()}, tmp_path / "evil.pt")
    run = cli("weights", "lenet", str(tmp_path / "evil.pt"), cwd=tmp_path)
    assert run.exit_code == 2 and run.stderr.count("\n") == 1
    assert (
        "holds pickled Python objects (posix.system)" in run.stderr and "weights_only` set to `False" not in run.stderr
    )
    assert not (tmp_path / "pwned").exists()


def test_a_plain_dict_without_batch_counters_loads_as_torch_loads_it(cli, tmp_path: Path) -> None:
    """BatchNorm fills a missing num_batches_tracked when the state_dict has no version metadata."""
    model = layerscope.build(ROOT / "configs" / "bn_convnet.yaml")
    plain = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(plain, tmp_path / "plain.pt")
    layerscope.build(ROOT / "configs" / "bn_convnet.yaml").load_state_dict(
        torch.load(tmp_path / "plain.pt"), strict=True
    )
    code, data = weights(cli, "configs/bn_convnet.yaml", str(tmp_path / "plain.pt"))
    assert code == 0 and data["matches"]
    assert "absent and not needed (bn1.num_batches_tracked, bn2.num_batches_tracked)" in data["notes"][-1]
    csv_run = cli("weights", "configs/bn_convnet.yaml", str(tmp_path / "plain.pt"), "--format", "csv")
    assert csv_run.exit_code == 0 and csv_run.stdout == "key,status,model_shape,checkpoint_shape\n"


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_raw_pickle_naming_code_is_named_whatever_its_protocol(cli, tmp_path: Path, protocol: int) -> None:
    import pickle

    class Boom:
        def __reduce__(self):
            import os

            return (os.system, ("touch pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"x": Boom()}, protocol=protocol))
    run = cli("weights", "lenet", str(tmp_path / "evil.pt"), cwd=tmp_path)
    assert run.exit_code == 2 and "holds pickled Python objects (posix.system)" in run.stderr
    assert not (tmp_path / "pwned").exists()
