"""Explanation quality of ReX on hidden-patch oracles: the table behind the oracle bound of
`tests/causal/test_oracles.py` (median ratio <= 2, worst <= 3).

    .venv/bin/python -m tests.causal.oracle_quality --rex=rexjax/configs/rex.py:paper --rules=alg1
    .venv/bin/python -m tests.causal.oracle_quality --rules=tool --keys=4 --sizes=48x64:10   # the defaults
    .venv/bin/python -m tests.causal.oracle_quality --keys=4 --sizes=48x64:10 \\
        --rex.extract.prune_grids=8                       # the defaults with another RexConfig field

For every responsibility rule x oracle (one patch; OR of two; AND of two) x image/patch size,
`--keys` runs with ReX key k and the patches placed at random with numpy seed k, with the
`--rex` config (default the fast preset; `--rules` sets its responsibility rule). The ratio is
explanation pixels / pixels actually needed (the patch; one patch for OR; both for AND); the
table gives its median and worst over the keys, and `ok` whether every explanation was
sufficient and held what is needed. Runs kept as evidence:
`benchmarks/results/oracle_quality/<YYYY-MM-DD>-<setting>/table.md`.
"""

from __future__ import annotations

import time

import numpy as np
from absl import app, flags

from benchmarks import config as rex_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line (defined only when run as a script)."""
    flags.DEFINE_list("rules", ["tool", "alg1", "sufficient"], "responsibility rules (one table block each)")
    flags.DEFINE_list("oracles", ["single", "or", "and"], "oracles")
    flags.DEFINE_list("sizes", ["64x64:12", "96x96:16", "48x80:10"], "HxW:patch")
    flags.DEFINE_integer("keys", 6, "keys (and layouts) per cell", lower_bound=1)
    rex_flags.define_rex_flag("fast")


def cell(rule, oracle, h, w, size, keys, config):
    """Ratios (explanation / needed pixels) and whether each held what is needed, over keys,
    with RexConfig `config` at responsibility rule `rule`."""
    from rexjax.causal.explainer import Explainer
    from tests.helpers import oracles

    explainer = Explainer(oracles.marked_oracle(size * size, oracle), config.replace(responsibility=rule))
    ratios, ok, forward = [], [], []
    for k in range(keys):
        patches = oracles.random_patches(h, w, size, 1 if oracle == "single" else 2, np.random.default_rng(k))
        ex = explainer(oracles.marked_image(h, w, patches, seed=k), key=k)
        held = [bool(ex.mask[p].all()) for p in patches]
        needed = size * size * (2 if oracle == "and" else 1)
        ratios.append(ex.mask.sum() / needed)
        ok.append(ex.sufficient and (all(held) if oracle == "and" else any(held)))
        forward.append(ex.forward_images)
    return np.asarray(ratios), ok, float(np.mean(forward))


def main(argv):
    del argv
    from rexjax.causal import RexConfig

    config = RexConfig.from_dict(FLAGS.rex)
    print(f"config: {config.to_dict()} (responsibility: per row)")
    print("| rule | oracle | image | patch | median | worst | all ratios | ok | forward images (mean) | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for rule in FLAGS.rules:
        for oracle in FLAGS.oracles:
            for spec in FLAGS.sizes:
                hw, size = spec.split(":")
                h, w = (int(v) for v in hw.split("x"))
                t = time.perf_counter()
                r, ok, fwd = cell(rule, oracle, h, w, int(size), FLAGS.keys, config)
                flag = "yes" if all(ok) else f"{sum(ok)}/{len(ok)}"
                print(f"| {rule} | {oracle} | {h}x{w} | {size} | {np.median(r):.2f} | {r.max():.2f} | "
                      f"{' '.join(f'{v:.1f}' for v in r)} | {flag} | {fwd:.0f} | {time.perf_counter() - t:.0f} |", flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
