"""Receptive fields (report/receptive.py) against three references: the fields measured on a real CPU
forward (which input pixels can change an output element), torchscan's per-layer figures composed
along sequential nets, and ResNet-18's worked by hand."""

from __future__ import annotations

import copy
import csv
import io
import json
import math

import pytest
import torch
from torch import nn

from layerscope import api
from layerscope.builder.builder import build


def _measured(model: nn.Module, shape: tuple[int, ...]) -> dict[str, tuple[list[int], list[int], list[float]]]:
    """Each leaf layer's receptive field, jump and start, measured: with positive weights and zero
    biases, an input pixel raised to 1000 changes exactly the outputs whose fields hold it (ReLU,
    max and average pooling pass an increase on). One batch holds every one-pixel image; the field
    of an output element away from the borders is the box of the pixels that changed it."""
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(0.1)
        for name, b in model.named_buffers():
            b.fill_(1.0 if name.endswith("running_var") else 0.0)
    channels, spatial = shape[0], shape[1:]
    pixels = math.prod(spatial)
    x = torch.zeros(pixels + 1, channels, pixels, dtype=torch.float64)
    x[torch.arange(pixels), :, torch.arange(pixels)] = 1000.0  # the last image stays blank: the baseline
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda m, a, out, name=name: outputs.__setitem__(name, out))
        for name, m in model.named_modules()
        if name and not list(m.children())
    ]
    with torch.no_grad():
        model(x.view(pixels + 1, channels, *spatial))
    for h in hooks:
        h.remove()
    found = {}
    for name, out in outputs.items():
        if out.dim() != len(shape) + 1:
            continue
        changed = (out[:-1] != out[-1:]).any(dim=1).reshape(*spatial, *out.shape[2:])  # input pixel, output element
        middle = [n // 2 for n in out.shape[2:]]
        fields, jumps, starts = [], [], []
        for axis in range(len(spatial)):
            boxes = []  # along this axis, through the middle of the others: each output's box of pixels
            for c in range(out.shape[2 + axis]):
                hit = changed[(..., *middle[:axis], c, *middle[axis + 1 :])].nonzero()[:, axis]
                boxes.append((int(hit.min()), int(hit.max())) if len(hit) else (0, -1))  # padding only: none
            widest = max(hi - lo for lo, hi in boxes)  # a field the borders did not cut
            c = next(
                c
                for c in range(len(boxes) - 1)
                if boxes[c][1] - boxes[c][0] == boxes[c + 1][1] - boxes[c + 1][0] == widest
            )
            (lo, hi), (lo2, _) = boxes[c], boxes[c + 1]
            fields.append(hi - lo + 1)
            jumps.append(lo2 - lo)
            starts.append((lo + hi) / 2 - c * jumps[-1])
        found[name] = (fields, jumps, starts)
    return found


def _computed(model: nn.Module, shape: tuple[int, ...]) -> dict[str, tuple[list[int], list[int], list[float]]]:
    report = api.inspect(model, (1, *shape), device="cpu")
    return {r.name: (r.receptive_field, r.jump, r.start) for r in report.layers if r.is_leaf and r.receptive_field}


class TwoPaths(nn.Module):
    """Paths of different fields meeting: an add of a padded-then-valid conv and a same-padded one
    (fields 3 centred at −1 and 0: their union is 4 wide, centred at −0.5), then a cat with a dilated one."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((2, 0, 2, 0))
        self.shifted = nn.Conv2d(1, 1, 3)
        self.same = nn.Conv2d(1, 1, 3, padding="same")
        self.dilated = nn.Conv2d(1, 1, 3, padding=3, dilation=3)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.same(x) + self.shifted(self.pad(x))
        return self.pool(torch.cat([out, self.dilated(x)], 1))


NETS = {
    "strided, dilated, padded, pooled": (
        nn.Sequential(
            nn.Conv2d(1, 2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2, 2, (3, 5), dilation=(2, 1), padding=(0, 2)),
            nn.BatchNorm2d(2),
            nn.AvgPool2d(3, stride=2, padding=1),
            nn.MaxPool2d(2, stride=1, dilation=2),
            nn.ConvTranspose2d(2, 2, 3, padding=1),
            nn.Conv2d(2, 1, 4, padding="same"),
        ),
        (1, 64, 60),
    ),
    "1d": (nn.Sequential(nn.Conv1d(1, 2, 5, stride=3), nn.Tanh(), nn.MaxPool1d(3, stride=2)), (1, 60)),
    "3d": (
        nn.Sequential(nn.Conv3d(1, 2, 3, stride=(1, 2, 2), padding=1), nn.BatchNorm3d(2), nn.AvgPool3d(2)),
        (1, 10, 14, 14),
    ),
    "two paths": (TwoPaths(), (1, 16, 16)),
}


@pytest.mark.parametrize("name", NETS)
def test_fields_match_a_real_forward(name: str) -> None:
    model, shape = NETS[name]
    assert _computed(model, shape) == _measured(model, shape)


def test_lenet_fields_match_a_real_forward_and_stop_at_flatten() -> None:
    model = api.build("lenet")
    computed = _computed(model, (1, 32, 32))
    assert computed == {k: v for k, v in _measured(model, (1, 32, 32)).items() if k in computed}
    # conv1 5×5: 5, start 2; pool 2: 5 + 1 = 6, jump 2, start 2 + 0.5 = 2.5; conv2 3×3: 6 + 2·2 = 10,
    # start 2.5 + 1·2 = 4.5; pool 2: 10 + 1·2 = 12, jump 4, start 4.5 + 0.5·2 = 5.5
    assert computed["max_pool2d_1"] == ([12, 12], [4, 4], [5.5, 5.5])
    report = api.inspect("lenet", device="meta")
    assert [r.receptive_field for r in report.layers if r.name in ("flatten", "fc1", "fc3")] == [None] * 3


def test_two_paths_union_by_hand() -> None:
    fields = _computed(*NETS["two paths"])
    # shifted: pad 2 before, then 3 valid: start −2 + 1 = −1, field [−2, 0]; same: [−1, 1]; union [−2, 1]
    assert fields["shifted"] == ([3, 3], [1, 1], [-1, -1])
    # the add (a join), then the cat with the dilated conv (field 1 + 2·3 = 7, [−3, 3]): union [−3, 3];
    # pool 2: 7 + 1 = 8, jump 2, start 0 + 0.5
    assert fields["pool"] == ([8, 8], [2, 2], [0.5, 0.5])


@pytest.mark.parametrize("config", ["alexnet", "vgg16", "convnet"])
def test_sequential_specs_against_torchscan(config: str) -> None:
    """torchscan 0.2.0 gives each torch.nn layer's own kernel (dilation included), stride and
    padding; the textbook recurrences compose them along the chain. (It has no figures for a spec's
    functional ops, so LeNet is checked against a real forward above, and a `relu`
    between convolutions counts as pointwise; its adaptive pools' padding
    is (in − k·s)/2, not a padding, so those layers are checked for identity only.)"""
    crawl_module = pytest.importorskip("torchscan.crawler").crawl_module
    spec = api.load(config)
    built = build(spec, device="meta")
    shape = tuple(spec.inputs[0].shape[1:])
    layers = crawl_module(built.model, shape, device="meta")["layers"]
    report = api.inspect(config, device="meta")
    ours = {r.name: r for r in report.layers if r.is_leaf}
    r, j, start = 1, 1, 0.0
    checked = 0
    for layer in layers:
        if layer["path"] not in ours:
            continue
        record = ours[layer["path"]]
        if record.receptive_field is None:  # flatten and after: no field, by decision
            assert record.type in ("flatten", "Flatten", "Linear", "Dropout", "ReLU", "relu", "log_softmax")
            continue
        metrics = layer["metrics"]
        k, s, p = (metrics[m]["value"] for m in ("receptive_field", "effective_stride", "effective_padding"))
        if k is None:  # a spec's functional relu: torchscan has no figure; pointwise, it changes nothing
            assert record.type == "relu"
            k, s, p = 1, 1, 0
        if record.type.startswith("Adaptive"):
            assert (k, s) == (1, 1)  # 6×6 → 6×6 in AlexNet, 7×7 → 7×7 in VGG: nothing changes
            p = 0
        r, start, j = r + (k - 1) * j, start + ((k - 1) / 2 - p) * j, j * s
        assert (record.receptive_field[-1], record.jump[-1], record.start[-1]) == (r, j, start), layer["path"]
        checked += 1
    assert checked >= 5


def test_resnet18_by_hand() -> None:
    """conv1 7×7/2: 7, jump 2; maxpool 3×3/2: 7 + 2·2 = 11, jump 4; each 3×3 conv adds 2·jump; the
    first conv of layers 2–4 doubles the jump after adding; the 1×1 downsample adds nothing, so each
    add keeps its main path's field."""
    layers = {r.name: r for r in api.inspect("resnet18", device="meta").layers}
    expected = {
        "conv1": (7, 2),
        "maxpool": (11, 4),
        "layer1": (11 + 4 * 2 * 4, 4),  # 43
        "layer2.0.conv1": (43 + 2 * 4, 8),  # 51
        "layer2.0.downsample": (43, 8),
        "layer2.0.residual": (51 + 2 * 8, 8),  # 67
        "layer2": (67 + 2 * 2 * 8, 8),  # 99
        "layer3": (99 + 2 * 8 + 3 * 2 * 16, 16),  # 211
        "layer4": (211 + 2 * 16 + 3 * 2 * 32, 32),  # 435
    }
    got = {name: (layers[name].receptive_field, layers[name].jump) for name in expected}
    assert got == {name: ([r, r], [j, j]) for name, (r, j) in expected.items()}
    assert all(layers[n].start == [0, 0] for n in expected)  # every padding is (k − 1)/2: centred on pixel 0
    assert layers["avgpool"].receptive_field is None and layers["fc"].receptive_field is None


def test_rf_columns_in_csv_and_only_on_inspect(cli) -> None:
    run = cli("inspect", "lenet", "--rf", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(run.stdout)))
    assert list(rows[0])[-3:] == ["rf", "jump", "start"]
    by_name = {row["layer"]: row for row in rows}
    assert (by_name["conv1"]["rf"], by_name["conv1"]["jump"], by_name["conv1"]["start"]) == ("5x5", "1x1", "2,2")
    assert by_name["fc1"]["rf"] == ""  # off the spatial path: no value
    plain = cli("inspect", "lenet", "--format", "csv").stdout
    assert "rf" not in plain.splitlines()[0].split(",")
    refused = cli("shapes", "lenet", "--rf")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1 and "No such option: --rf" in refused.stderr


def test_json_always_has_the_fields(cli) -> None:
    layers = {r["name"]: r for r in json.loads(cli("inspect", "lenet", "--format", "json").stdout)["layers"]}
    assert (layers["conv1"]["receptive_field"], layers["conv1"]["jump"], layers["conv1"]["start"]) == (
        [5, 5],
        [1, 1],
        [2, 2],
    )
    assert layers["fc1"]["receptive_field"] is None and layers["fc1"]["jump"] is None and layers["fc1"]["start"] is None


class _Reduced(nn.Module):
    """Python code between layers changes the tensor's shape: a mean over the map, a flatten, a
    functional max-pool. No layer rule describes those, so the field stops there (a tester saw 3x3
    on a 2x4 tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)
        self.act = nn.ReLU()
        self.norm = nn.BatchNorm1d(4 * 3 * 3)
        self.after_pool = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.c(x)
        pooled = self.after_pool(torch.nn.functional.max_pool2d(h, 2))  # 6x6 → 3x3, outside any layer
        return self.act(h.mean(dim=(2, 3))), self.norm(pooled.flatten(1)), pooled


def test_a_reshape_or_pooling_in_python_code_ends_the_field() -> None:
    report = api.inspect(_Reduced().eval(), (2, 3, 8, 8))
    fields = {r.name: r.receptive_field for r in report.layers}
    assert fields == {"": None, "c": [3, 3], "after_pool": None, "act": None, "norm": None}
