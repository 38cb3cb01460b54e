"""The round trip of `layerscope import`, as a Markdown table: each model imported as a spec, and
the spec and the model inspected (params, every layer call's name and output shapes, FLOPs).

    PYTHONPATH=. python benchmarks/import_roundtrip.py              # the test zoo's models
    PYTHONPATH=. /work/heavy/.venv/bin/python benchmarks/import_roundtrip.py   # and timm's, where installed
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import zoo_twins
from torch import nn

from layerscope.errors import UsageError

import python_models
import reference_models as ref
from import_roundtrip import round_trip

MODELS = {
    "zoo_twins resnet18": (zoo_twins.TWINS["resnet18"], [1, 3, 224, 224]),
    "zoo_twins resnet50": (zoo_twins.TWINS["resnet50"], [1, 3, 224, 224]),
    "zoo_twins alexnet": (zoo_twins.TWINS["alexnet"], [1, 3, 224, 224]),
    "reference LeNet": (ref.LeNet, [1, 1, 32, 32]),
    "reference TinyModel": (ref.TinyModel, [1, 100]),
    "reference Classifier": (ref.Classifier, [1, 3, 32, 32]),
    "reference bn_convnet": (ref.bn_convnet, [1, 3, 32, 32]),
    "reference LSTMTagger": (ref.LSTMTagger, [5]),
    "reference FixedHiddenMLP": (ref.FixedHiddenMLP, [2, 20]),
    "reference transformer_encoder": (ref.transformer_encoder, [10, 2, 512]),
    "python_models Classifier": (python_models.Classifier, [1, 3, 32, 32]),
    "python_models TwoHeads": (python_models.TwoHeads, [2, 8]),
    # forwards torch.fx cannot trace, written from their recorded calls (importer/fallback.py)
    "python_models Gated": (python_models.Gated, [2, 3, 8, 8]),
    "python_models Doubled": (python_models.Doubled, [2, 3, 8, 8]),
    "Sequential(Gated, ReLU, Linear)": (
        lambda: nn.Sequential(python_models.Gated(), nn.ReLU(), nn.Linear(10, 3)),
        [2, 3, 8, 8],
    ),
}


def main() -> None:
    models = dict(MODELS)
    try:
        import timm

        for name in ("resnet18", "convnext_atto", "vit_tiny_patch16_224", "efficientnet_b0"):
            models[f"timm {name}"] = (lambda name=name: timm.create_model(name, pretrained=False), [1, 3, 224, 224])
    except ImportError:
        print("(timm not installed: its models left out)")
    print("| model | params py/yaml | layers compared | FLOPs py/yaml | result |")
    print("| --- | --- | --- | --- | --- |")
    for name, (make, shape) in models.items():
        dtypes = ["int64"] if name.endswith("LSTMTagger") else []
        notes: list[str] = []
        try:
            trip = round_trip(make(), [shape], name, dtypes, notes)
            fell_back = any("was written from its recorded calls" in note for note in notes)  # not the sizes notes
            print(trip.row()[: -len(" |")] + (", from the recorded calls |" if fell_back else " |"))
        except UsageError as e:
            print(f"| {name} | | | | exit 2: {e.message} |")


if __name__ == "__main__":
    main()
