"""timm architectures and torchvision's models, detectors with anchor caches included, as users
bring them (random init, nothing downloaded), on the default device: parameters, every call's
output shapes against a real CPU forward, FLOPs against FlopCounterMode, no false failure, the
model untouched and its next real forward unchanged.

timm and torchvision do not import beside the CPU torch build of the README's set-up; these run in
the second environment (README "Development": torch 2.14.1 + torchvision 0.29.1 + timm), which
.ci/run sets up and runs after the main suite. In the main environment they are skipped."""

from __future__ import annotations

import copy

import pytest
import torch
from real_runs import real_run, shapes

import layerscope

from test_untouched import state

timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")

TIMM = (
    "resnet18 resnet50 efficientnet_b0 mobilenetv3_small_100 mobilenetv2_100 convnext_tiny vit_tiny_patch16_224 "
    "deit_tiny_patch16_224 swin_tiny_patch4_window7_224 levit_128s coat_lite_tiny coat_tiny regnety_002 densenet121 "
    "inception_v3 xception41 res2net50_14w_8s resnest14d sequencer2d_s mixer_b16_224 poolformer_s12 pvt_v2_b0 "
    "mobilevit_xxs efficientformer_l1 edgenext_xx_small ghostnet_100 hrnet_w18_small dla34 dpn68 cspdarknet53 "
    "tresnet_m nfnet_l0 rexnet_100 tinynet_a lcnet_050 maxvit_tiny_tf_224"
).split()
DETECTORS = ("fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "maskrcnn_resnet50_fpn")


def unique_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def check(model: torch.nn.Module, args: tuple) -> None:
    before = state(model)
    calls, flops = real_run(model, args)
    with torch.no_grad():
        expected = copy.deepcopy(model)(*args)  # on a copy: LeViT fills a cache on its first eval forward
    report = layerscope.inspect(model, inputs=args)

    assert report.failure is None, report.failure
    assert report.total_params == unique_params(model)
    # every call's shapes (a module under two names, CoaT's shared encoders, is named per call by
    # layerscope and once by the reference)
    assert sorted(r.output_shapes for r in report.layers if r.completed) == sorted(s for _, s in calls)
    if report.total_flops is None:  # an op torch has no formula for: named in a note
        assert any("FLOPs not counted" in n.message for n in report.notes)
    else:
        assert report.total_flops == flops
    assert state(model) == before
    with torch.no_grad():
        again = model(*args)
    assert shapes(again) == shapes(expected)
    for a, b in zip(torch.utils._pytree.tree_leaves(again), torch.utils._pytree.tree_leaves(expected), strict=True):
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", TIMM)
def test_a_timm_model(name: str) -> None:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    size = model.pretrained_cfg.get("input_size") or (3, 224, 224)
    check(model, (torch.randn(1, *size),))


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "vit_b_16"])
def test_a_torchvision_classifier(name: str) -> None:
    torch.manual_seed(0)
    check(torchvision.models.get_model(name, weights=None).eval(), (torch.randn(1, 3, 224, 224),))


@pytest.mark.parametrize("name", DETECTORS)
def test_a_torchvision_detector_with_its_anchor_cache(name: str) -> None:
    """A list of images in; nonzero and boolean masks inside (meta cannot run them: the CPU does)."""
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, weights_backbone=None).eval()
    check(model, ([torch.rand(3, 320, 320)],))


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch16_224", "convnext_tiny", "mobilenetv3_small_100"])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_training_memory_is_what_a_real_training_forward_saves(name: str, device: str) -> None:
    """inspect --train's saved activations against a real CPU training-mode forward of the timm model
    (tests/test_training.py's count); on meta too, attention taking the CPU's fused kernel."""
    from test_training import saved_by_a_real_forward

    model = timm.create_model(name, pretrained=False)
    x = torch.randn(1, 3, 224, 224)
    before = state(model)
    report = layerscope.inspect(model, inputs=x, device=device, train=True)
    assert state(model) == before
    assert report.train_memory is not None
    assert report.train_memory.activations_bytes == saved_by_a_real_forward(copy.deepcopy(model), (x,))


def test_torchvision_resnet18_flow_and_fields() -> None:
    """torchvision's BasicBlock adds `out += identity` in Python: eight joins, one per block, each of
    bn2 and the block's input (or its downsample); the fields as for configs/resnet18.yaml, by hand:
    conv1 7 (jump 2), maxpool 7 + 2·2 = 11 (jump 4), then each 3×3 conv adds 2·jump, and the first
    conv of layers 2–4 doubles the jump after adding."""
    model = torchvision.models.resnet18(weights=None).eval()
    report = layerscope.inspect(model, (1, 3, 224, 224), device="meta")
    names = [r.name for r in report.layers]
    assert [j.op for j in report.joins] == ["add"] * 8
    first, second = report.joins[2].inputs_from
    assert (names[int(first[6:])], names[int(second[6:])]) == ("layer2.0.bn2", "layer2.0.downsample.1")
    fields = {r.name: r.receptive_field for r in report.layers if r.depth == 1}
    assert fields == {
        "conv1": [7, 7],
        "bn1": [7, 7],
        "relu": [7, 7],
        "maxpool": [11, 11],
        "layer1": [11 + 4 * 2 * 4] * 2,  # 43
        "layer2": [43 + 2 * 4 + 3 * 2 * 8] * 2,  # 99
        "layer3": [99 + 2 * 8 + 3 * 2 * 16] * 2,  # 211
        "layer4": [211 + 2 * 16 + 3 * 2 * 32] * 2,  # 435
        "avgpool": None,  # global: no field
        "fc": None,
    }


def test_torchvision_googlenet_concatenations_are_joins() -> None:
    """Each Inception block ends in `torch.cat(outputs, 1)` of its four branches."""
    model = torchvision.models.googlenet(weights=None, init_weights=False, aux_logits=False).eval()
    report = layerscope.inspect(model, (1, 3, 224, 224), device="meta")
    cats = [j for j in report.joins if j.op == "cat"]
    assert len(cats) == 9 and all(len(j.inputs_from) == 4 for j in cats)
    assert [j.within for j in cats[:2]] == ["inception3a", "inception3b"]


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto", "vit_tiny_patch16_224"])
def test_a_timm_model_imported_as_a_spec_round_trips(name: str) -> None:
    """`layerscope import`: the spec inspects as the model does (params, every call's name and output
    shapes, FLOPs), and takes the model's own weights strictly to compute its output on the CPU."""
    from layerscope.spec.model import parse_model
    from layerscope.spec.source import load_documents

    from import_roundtrip import round_trip

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    trip = round_trip(model, [[1, 3, 224, 224]], name)
    assert trip.ok, trip.differences
    spec = parse_model(load_documents(trip.text, f"<{name}>")[0], default_name=name)
    ours = layerscope.build(spec).eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), model(x), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("efficientnet_b0", "bn1: torch.nn.functional.batch_norm(…) has no equivalent in the spec language"),
        ("swin_tiny_patch4_window7_224", "layers.0.blocks.0: torch.nn.functional.pad(…) has no equivalent"),
    ],
)
def test_a_timm_model_the_spec_cannot_express_is_refused_naming_where(name: str, message: str) -> None:
    from layerscope.errors import UsageError
    from layerscope.importer.document import to_spec

    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        to_spec(timm.create_model(name, pretrained=False), [((1, 3, 224, 224), "float32")], name)
