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
