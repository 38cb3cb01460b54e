"""Writes the checkpoints the golden `weights` outputs read: state_dicts of the Python twins, made on
the meta device, so each file holds every key and shape and no tensor data (a few KiB).

Regenerate with:  python tests/checkpoints/make_checkpoints.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from zoo_twins import TWINS  # noqa: E402

from reference_models import REFERENCES  # noqa: E402


def main() -> None:
    with torch.device("meta"):
        resnet18 = TWINS["resnet18"]()
        lenet = REFERENCES["lenet"][0]()
        bn_convnet = REFERENCES["bn_convnet"][0]()
    torch.save(resnet18.state_dict(), HERE / "resnet18_torchvision.pt")
    torch.save(bn_convnet.state_dict(), HERE / "bn_convnet_sequential.pt")
    # LeNet's usual slips: fc1 sized for 5x5 second-layer kernels, a head renamed, a key lost
    broken = lenet.state_dict()
    broken["fc1.weight"] = torch.empty(120, 400, device="meta")
    broken["head.weight"], broken["head.bias"] = broken.pop("fc3.weight"), broken.pop("fc3.bias")
    del broken["conv2.bias"]
    torch.save({"epoch": 10, "model_state_dict": broken, "optimizer_state_dict": {}}, HERE / "lenet_mismatch.pt")


if __name__ == "__main__":
    main()
