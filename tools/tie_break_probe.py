"""Probe (issue 13, item 3): would breaking the ties of the "alg1" map by the "rex" rule's
credit raise normalised insertion at a small iteration budget, at no extra forward image?

At a few iterations most pixels of an "alg1" map are 0 (only children *needed* by a passing
mutant get credit), so insertion ranks most of the image by flat index (the reference's tie
order). The search's trajectory does not depend on the responsibility rule (the queue holds
the smallest passing mutants), so an "alg1" run and a "rex" run with the same key see the
same mutants; this probe runs both and scores

    combined = alg1 + (0.5 / 12) * rex / max(rex)

(strictly below one "alg1" unit, so the "alg1" order is kept and only its ties are broken)
with the same extraction and metric code as `tools/bench_compare.py` (REX convention, mask
value 0). It costs the second search; an engine option would not.

  .venv/bin/python tools/tie_break_probe.py --limit 3 --seeds 1 --iters 4,6
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np
from absl import app, flags

ROOT = Path(__file__).resolve().parents[1]
FLAGS = flags.FLAGS
flags.DEFINE_string("images", str(ROOT / "third_party" / "images"), "Folder of images (or one image).")
flags.DEFINE_integer("limit", 3, "Only the first N images.")
flags.DEFINE_list("seeds", ["1"], "Seeds.")
flags.DEFINE_list("iters", ["4", "6"], "Iteration budgets.")
flags.DEFINE_float("prefix_growth", 0.05, "RexConfig.prefix_growth for the extractions.")


def combine(alg1: np.ndarray, rex: np.ndarray) -> np.ndarray:
    """alg1 map (multiples of 1/12) with its ties broken by the rex map, order kept."""
    scale = float(rex.max()) or 1.0
    return (alg1.astype(np.float64) + (0.5 / 12) * rex / scale).astype(np.float32)


def main(argv):
    import jax.numpy as jnp

    from rexjax import data, models
    from rexjax.api import make_explainer
    from rexjax.causal.extract import make_global_extractor
    from rexjax.classifier import Classifier
    from rexjax.metrics import REX, insertion_deletion

    model = models.load("efficientnet_lite0")
    clf = Classifier.of(model)
    rows = []
    for iters in (int(i) for i in FLAGS.iters):
        common = dict(iters=iters, prefix_growth=FLAGS.prefix_growth)
        alg1 = make_explainer(model, **common)
        rex = make_explainer(model, responsibility="rex", **common)
        extract = make_global_extractor(clf.masked(0.0), alg1.config)
        for p in data.list_images(FLAGS.images)[: FLAGS.limit]:
            x = model.preprocess(p)
            for seed in (int(s) for s in FLAGS.seeds):
                a, r = alg1(x, key=seed), rex(x, key=seed)
                assert a.target == r.target
                both = combine(np.asarray(a.responsibility), np.asarray(r.responsibility))
                ex = extract(jnp.asarray(x), both, a.target, a.full_confidence)
                for name, m, area in (("alg1", a.responsibility, a.area), ("rex", r.responsibility, r.area),
                                      ("alg1, ties by rex", both, float(ex.mask.mean()))):
                    ins = insertion_deletion(clf, x, m, a.target, convention=REX, mask_mode=0.0).insertion_auc
                    rows.append((iters, name, p.name, seed, area, ins, a.forward_images))
                    print(f"iters {iters} {name:18s} {p.name} seed {seed}: area {area:.3f} ins {ins:.3f}", flush=True)
    print("\n| iters | map | pairs | median area | median insertion |\n| --- | --- | --- | --- | --- |")
    for key in sorted({(r[0], r[1]) for r in rows}):
        sel = [r for r in rows if (r[0], r[1]) == key]
        print(f"| {key[0]} | {key[1]} | {len(sel)} | {statistics.median(r[4] for r in sel):.3f} | "
              f"{statistics.median(r[5] for r in sel):.3f} |")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    app.run(main)
