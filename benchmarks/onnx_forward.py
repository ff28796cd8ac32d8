"""Seconds per forward batch of an ONNX classifier compiled to JAX (`rexjax.models.load(x.onnx)`,
NCHW graphs run channels-last inside), the same graph compiled in its own NCHW layout
(`channels_last=False`: the input transposed at entry), onnxruntime on the CPU, and
optionally a zoo model (`--zoo efficientnet_lite0`: the Flax port of the same network).

Every JAX model is timed jitted, one call per batch, after a first call (compile included,
reported apart); then --repeats rounds, each timing one call of every runner in turn (so a
busy machine slows them alike), and the median per runner. The logits of all runners on
the same random batch are compared with the compiled default (max abs difference).
Timings are only comparable within one run (the load average is printed).

  .venv-export/bin/python tests/fixtures/onnx/export.py --lite0   # Lite0 graph + data under $TMPDIR
  .venv/bin/python -m benchmarks.onnx_forward /tmp/rexjax_onnx_export/efficientnet_lite0.onnx --zoo efficientnet_lite0
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx", help="an ONNX classifier (NCHW or NHWC input)")
    parser.add_argument("--zoo", default=None, help="a zoo model to time beside it (same input size)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import jax

    import rexjax.models as M
    from rexjax.models.onnx import load_onnx

    model = M.load(args.onnx)
    x = np.random.default_rng(0).standard_normal((args.batch, *model.input_size, model.channels)).astype(np.float32)
    runners = {"onnx -> jax, channels-last inside": model,
               "onnx -> jax, NCHW (transposed at entry)": load_onnx(args.onnx, channels_last=False)}
    if args.zoo:
        runners[f"zoo {args.zoo} (Flax)"] = M.load(args.zoo)
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime is not installed: not timed")
    else:
        sess = ort.InferenceSession(args.onnx, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        nchw = model.input_layout == "NCHW"
        runners["onnxruntime (CPU)"] = lambda xb: sess.run(None, {name: xb.transpose(0, 3, 1, 2) if nchw else xb})[0]

    print(f"{model.name}: batch {args.batch} at {model.input_size[0]}x{model.input_size[1]}, "
          f"{len(model.graph.nodes)} nodes, jax {jax.__version__} on {jax.default_backend()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    def seconds(fn) -> float:
        t = time.perf_counter()
        jax.block_until_ready(fn(x))
        return time.perf_counter() - t

    first = {label: seconds(fn) for label, fn in runners.items()}
    reference = np.asarray(model(x))
    diffs = {label: float(np.abs(np.asarray(fn(x)) - reference).max()) for label, fn in runners.items()}
    rounds = [{label: seconds(fn) for label, fn in runners.items()} for _ in range(args.repeats)]
    print(f"{'runner':<42} {'first s':>8} {'median s':>9} {'max |diff|':>11}")
    for label in runners:
        median = statistics.median(r[label] for r in rounds)
        print(f"{label:<42} {first[label]:8.3f} {median:9.3f} {diffs[label]:11.2e}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
