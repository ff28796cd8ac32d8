"""Forward images against quality for ReX's budget knobs on EfficientNet-Lite0 (issue 13 item 3).

    .venv/bin/python -m experiments.engine_budget --stage=collect   # the expensive part, cached
    .venv/bin/python -m experiments.engine_budget --stage=table     # the table from the cache

`collect` runs the search once per (image, key, refine_static) with `--max_iters` iterations
and stores every iteration's map (exact integer units) and mutant count in `--cache`.
Iteration p always uses `fold_in(key, p)` and iterations do not interact, so the map of the
first n iterations is exactly the map a run with `iters=n` returns, and its cost is the
first n iterations' mutants (the padding of the lockstep rounds, at most one batch per
round, is left out and the same for every variant). `table` then extracts (linear and coarse
prefix search) and scores every variant: forward images (map mutants + extraction images),
area, the ReX-convention normalised insertion (rexjax.metrics, insertion curve only) and
sufficiency; plus the convergence stop (waves of `--wave` iterations, stop when the extracted
explanation's IoU with the previous wave's is >= tau).
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("stage", "table", ["collect", "table"], "what to run")
flags.DEFINE_list("images", ["ladybird.jpg", "starfish.jpg", "tennis.jpg", "2008_000033.jpg"], "vendored images")
flags.DEFINE_list("keys", ["0", "1"], "ReX keys")
flags.DEFINE_list("refine_static", ["true", "false"], "RexConfig.refine_static values")
flags.DEFINE_integer("max_iters", 20, "iterations collected")
flags.DEFINE_list("iters", ["3", "4", "6", "8", "10", "20"], "iteration budgets scored")
flags.DEFINE_list("waves", ["2", "4"], "iterations per wave for the convergence stop")
flags.DEFINE_list("taus", ["0.9", "1.0"], "IoU thresholds for the convergence stop")
flags.DEFINE_string("cache", "out/engine_budget", "cache directory")
flags.DEFINE_integer("step", 400, "insertion curve step in pixels (the metric's ReX convention uses 100)")
flags.DEFINE_bool("per_pair", False, "also print every (image, key) row")

IMAGES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "third_party", "images")


def _cache_file(image, key, refine):
    return os.path.join(FLAGS.cache, f"{image}.k{key}.rs{int(refine)}.npz")


def collect():
    import rexjax
    from rexjax import checks

    os.makedirs(FLAGS.cache, exist_ok=True)
    for refine in (s.lower() == "true" for s in FLAGS.refine_static):
        ex = rexjax.make_explainer("efficientnet_lite0", iters=FLAGS.max_iters, refine_static=refine)
        for image in FLAGS.images:
            x = ex.classifier.prepare(os.path.join(IMAGES, image))
            probs = np.asarray(ex.classifier.full_probs(x))
            target = int(np.argmax(probs))
            for key in FLAGS.keys:
                path = _cache_file(image, key, refine)
                if os.path.exists(path):
                    continue
                start = time.perf_counter()
                found = ex._search(checks.key(int(key)), x, target, float(probs[target]))
                np.savez_compressed(
                    path, units=found.units, kept=found.kept, iteration_mutants=found.iteration_mutants,
                    target=target, full_confidence=float(probs[target]), forward_images=found.forward_images,
                )
                print(f"{image} key {key} refine_static {refine}: {found.forward_images} images, "
                      f"{time.perf_counter() - start:.0f} s", flush=True)


def _iou(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


class _Pair:
    """One cached (image, key, refine_static) search, with memoised extractions and scores."""

    def __init__(self, path, explainer, extractors, convention):
        from rexjax.causal.responsibility import RESOLUTION

        data = np.load(path)
        self.name = os.path.basename(path)[: -len(".npz")]
        self.units, self.kept, self.mutants = data["units"], data["kept"], data["iteration_mutants"]
        self.target, self.full = int(data["target"]), float(data["full_confidence"])
        image = self.name.rsplit(".k", 1)[0]
        self.x = explainer.classifier.prepare(os.path.join(IMAGES, image))
        self.explainer, self.extractors, self.convention = explainer, extractors, convention
        self.resolution = RESOLUTION
        self._ex, self._ins = {}, {}

    def map(self, n):
        return (self.units[:n][self.kept[:n]].sum(0, dtype=np.int64) / self.resolution).astype(np.float32)

    def extract(self, n, search):
        if (n, search) not in self._ex:
            self._ex[n, search] = self.extractors[search](self.x, self.map(n), self.target, self.full)
        return self._ex[n, search]

    def insertion(self, n):
        from rexjax.metrics.insertion_deletion import insertion_deletion

        if n not in self._ins:
            self._ins[n] = insertion_deletion(
                self.explainer.classifier, self.x, self.map(n), self.target, convention=self.convention
            ).insertion_auc
        return self._ins[n]

    def fixed(self, n, search):
        ex = self.extract(n, search)
        return dict(n=n, forward=int(self.mutants[:n].sum()) + ex.forward_images, area=ex.pixels / self.x[..., 0].size,
                    ins=self.insertion(n), ok=ex.sufficient)

    def converged(self, wave, tau, max_iters):
        """Waves of `wave` iterations; stop when the explanation's IoU with the last wave's >= tau."""
        forward, last, n = 0, None, 0
        while n < max_iters:
            n = min(n + wave, max_iters)
            ex = self.extract(n, "coarse")
            forward += ex.forward_images
            if last is not None and _iou(ex.mask, last) >= tau:
                break
            last = ex.mask
        return dict(n=n, forward=int(self.mutants[:n].sum()) + forward, area=ex.pixels / self.x[..., 0].size,
                    ins=self.insertion(n), ok=ex.sufficient)


def table():
    import glob

    import rexjax
    from rexjax.causal.extract import make_global_extractor
    from rexjax.metrics.insertion_deletion import REX

    explainer = rexjax.make_explainer("efficientnet_lite0")
    extractors = {s: make_global_extractor(explainer.classify, dataclasses.replace(explainer.config, prefix_search=s))
                  for s in ("linear", "coarse")}
    convention = REX._replace(step=FLAGS.step)
    by_refine = {}
    for path in sorted(glob.glob(os.path.join(FLAGS.cache, "*.npz"))):
        pair = _Pair(path, explainer, extractors, convention)
        by_refine.setdefault(pair.name.rsplit(".rs", 1)[1], []).append(pair)
    print(f"insertion: ReX convention with step {FLAGS.step}; forward images = search mutants + extraction images")
    print("| refine_static | variant | pairs | iterations (median) | forward images (median) | area (median) | "
          "insertion (median) | sufficient |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for refine, pairs in sorted(by_refine.items(), reverse=True):
        max_iters = min(len(p.units) for p in pairs)
        variants = [(f"iters {max_iters}, linear prefix", lambda p: p.fixed(max_iters, "linear"))]
        variants += [(f"iters {n}, coarse prefix", lambda p, n=n: p.fixed(n, "coarse"))
                     for n in map(int, FLAGS.iters) if n <= max_iters]
        variants += [(f"converge: waves of {w}, IoU >= {t}", lambda p, w=w, t=t: p.converged(w, t, max_iters))
                     for w in map(int, FLAGS.waves) for t in map(float, FLAGS.taus)]
        for name, run in variants:
            rows = [run(p) for p in pairs]
            med = lambda f: np.median([r[f] for r in rows])
            print(f"| {refine == '1'} | {name} | {len(rows)} | {med('n'):.0f} | {med('forward'):.0f} | {med('area'):.4f} | "
                  f"{med('ins'):.3f} | {sum(r['ok'] for r in rows)}/{len(rows)} |", flush=True)
            if FLAGS.per_pair:
                for p, r in zip(pairs, rows):
                    print(f"|  | {p.name} |  | {r['n']} | {r['forward']} | {r['area']:.4f} | {r['ins']:.3f} | {r['ok']} |")


def main(argv):
    del argv
    if FLAGS.stage == "collect":
        collect()
    else:
        table()


if __name__ == "__main__":
    app.run(main)
