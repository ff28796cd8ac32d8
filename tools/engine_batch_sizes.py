"""Seconds per ReX explanation against the model batch size, inside the engine (BUILD_NOTES
"CPU batch size"): one explainer per batch size, compiled on a first call that is not
counted, then `--rounds` keys per batch size interleaved in alternating order in one
process (so load drift hits every batch size alike). Maps do not depend on the batch size;
rows pushed do (a round pads its mutants to a whole batch).

    .venv/bin/python tools/engine_batch_sizes.py --image=third_party/images/starfish.jpg --sizes=4,8,16
"""

from __future__ import annotations

import time

import numpy as np
from absl import app, flags

_IMAGE = flags.DEFINE_string("image", "third_party/images/ladybird.jpg", "Image to explain.")
_MODEL = flags.DEFINE_string("model", "efficientnet_lite0", "Zoo model name.")
_SIZES = flags.DEFINE_list("sizes", ["1", "4", "8", "16"], "Batch sizes to compare.")
_ITERS = flags.DEFINE_integer("iters", 3, "ReX iterations per explanation.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed explanations per batch size (keys 1..rounds).", lower_bound=1)


def main(argv) -> None:
    del argv
    from rexjax import models
    from rexjax.api import make_explainer
    from rexjax.causal import RexConfig

    model = models.load(_MODEL.value)
    x = model.preprocess(_IMAGE.value)
    sizes = [int(s) for s in _SIZES.value]
    explainers = {b: make_explainer(model, RexConfig(iters=_ITERS.value, batch_size=b)) for b in sizes}
    for b, explain in explainers.items():
        start = time.perf_counter()
        explain(x, key=0)
        print(f"batch {b}: first call (compile + run) {time.perf_counter() - start:.1f} s", flush=True)
    timed: dict[int, list[tuple[float, int]]] = {b: [] for b in sizes}
    for r in range(_ROUNDS.value):
        for b in sizes if r % 2 == 0 else sizes[::-1]:
            start = time.perf_counter()
            ex = explainers[b](x, key=r + 1)
            timed[b].append((time.perf_counter() - start, int(ex.forward_images)))
    print("| batch | seconds per key | rows pushed | rows/s (median) |\n| --- | --- | --- | --- |")
    for b in sizes:
        secs = ", ".join(f"{t:.1f}" for t, _ in timed[b])
        rows = ", ".join(str(n) for _, n in timed[b])
        print(f"| {b} | {secs} | {rows} | {np.median([n / t for t, n in timed[b]]):.1f} |")


if __name__ == "__main__":
    app.run(main)
