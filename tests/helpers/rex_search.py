"""A slow, independent re-implementation of the ReX search, to pin `rexjax.causal.search`.

Written from the documented semantics (search.py module doc, BUILD_NOTES "ReX engine"), not
from the engine's arrays: plain Python loops over iterations, rounds, jobs, active boxes and
the 16 subsets of each split's children; every mask is rendered with numpy slicing and the
model is asked about it directly (the empty and the full subset included), so nothing is
inferred from earlier rounds. Responsibility is exact (`fractions.Fraction`), painted with
numpy and returned in integer units of 1/RESOLUTION for the exact rules. Only the split
points are shared with the engine (`partition.split_box`, pinned by tests/causal/test_partition.py).

    ref = reference_search(classify, x, target, search_config, key, full_confidence)
    ref.units[i]          int64[H, W] iteration i's map in units of 1/12 (exact rules)
    ref.values[i]         float64[H, W] the same in responsibility units (every rule)
    ref.depth_reached[i]  deepest children queued
    ref.splits[i]         splits evaluated (14 mutants each)
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.causal.partition import split_box

RESOLUTION = 12
ALL = frozenset(range(4))
# The 14 mutants in the reference order, then the empty and the full set.
PROPER = [frozenset(s) for n in (1, 2, 3) for s in itertools.combinations(range(4), n)]
SUBSETS16 = PROPER + [frozenset(), ALL]


def rule_values(rule: str, passes: dict, conf: dict) -> list:
    """Responsibility of the 4 children from the pass/fail of all 16 subsets (dict by frozenset).

    tool: sum over passing mutants S (the 14) containing j of 1/|S|; weighted: confidence x
    1/|S|; sufficient (Def. 4.2 on the partition): 1/min{|S| : j in S, S passes, S - {j}
    fails} over all 16; alg1 (Alg. 1 read literally): 1/(k+1), k = 4 - |S| = masked
    children, minimised over the same S. 0 when no S qualifies. main_effect: the mean
    confidence of the 7 mutants containing j minus that of the 7 without it, passing or not.
    """
    out = []
    for j in range(4):
        if rule == "main_effect":
            shown = [conf[s] for s in PROPER if j in s]
            hidden = [conf[s] for s in PROPER if j not in s]
            out.append(sum(shown) / len(shown) - sum(hidden) / len(hidden))
            continue
        if rule in ("tool", "weighted"):
            v = Fraction(0) if rule == "tool" else 0.0
            for s in PROPER:
                if j in s and passes[s]:
                    v += (Fraction(1, len(s)) if rule == "tool" else conf[s] / len(s))
            out.append(v)
            continue
        critical = [s for s in SUBSETS16 if j in s and passes[s] and not passes[s - {j}]]
        if not critical:
            out.append(Fraction(0))
        elif rule == "sufficient":
            out.append(Fraction(1, min(len(s) for s in critical)))
        elif rule == "alg1":
            out.append(Fraction(1, min(4 - len(s) for s in critical) + 1))
        else:
            raise ValueError(rule)
    return out


def box_mask(box, h, w):
    m = np.zeros((h, w), bool)
    r0, c0, r1, c1 = (int(v) for v in box)
    m[r0:r1, c0:c1] = True
    return m


class Reference(NamedTuple):
    units: list  # int64[H, W] per iteration (exact rules; None for float rules)
    values: list  # float64[H, W] per iteration
    depth_reached: list
    splits: list
    total: np.ndarray  # float64 sum over kept iterations
    kept: list


def reference_search(classify, x, target: int, cfg, key, full_confidence: float) -> Reference:
    """`classify(x, masks[B, H, W]) -> probs[B, K]` (a MaskedClassifier); cfg the search's
    `SearchConfig` (`RexConfig.search`); a mutant passes when its top-1 is `target` and its
    confidence is at least `confidence_filter x full_confidence` (as the engine's threshold,
    rounded to float32). Iteration p's key is `fold_in(key, p)` (`rexjax.keys.iteration`)."""
    h, w = x.shape[:2]
    run = jax.jit(classify)
    x = jnp.asarray(x)
    threshold = np.float32(cfg.confidence_filter * full_confidence)
    exact = cfg.responsibility in ("sufficient", "alg1", "tool") and not cfg.concentrate
    capacity = 14 if cfg.queue_style == "all" else cfg.queue_len

    def ask(masks):
        probs = np.asarray(run(x, jnp.asarray(np.stack(masks))))
        return [(int(np.argmax(p)) == target and p[target] >= threshold, float(p[target])) for p in probs]

    units, values, depths, splits, kept = [], [], [], [], []
    for p in range(1, cfg.iters + 1):
        kp = jax.random.fold_in(key, p)
        resp = np.zeros((h, w), object if exact else np.float64)
        resp[:] = Fraction(0) if exact else 0.0
        # a job: (static bool[H, W], [(box, depth), ...] active boxes)
        jobs = [(np.zeros((h, w), bool), [(np.array([0, 0, h, w]), 0)])]
        depth_reached, n_splits, work = 0, 0, 0
        for _ in range(cfg.tree_depth + 2):
            candidates = []  # (visible pixels, job, slot, S, children)
            for static, active in jobs:
                for a, (box, depth) in enumerate(active):
                    kids, ok = split_box(kp, jnp.asarray(box, jnp.int32), jnp.int32(depth), min_box_size=cfg.min_box_size,
                                         tree_depth=cfg.tree_depth, distribution=cfg.distribution,
                                         distribution_args=cfg.distribution_args)
                    if not bool(ok):
                        continue
                    kids = np.asarray(kids)
                    n_splits += 1
                    work += 14
                    base = static.copy()
                    for b, (other, _) in enumerate(active):
                        if b != a:
                            base |= box_mask(other, h, w)
                    masks = []
                    for s in SUBSETS16:
                        m = base.copy()
                        for j in s:
                            m |= box_mask(kids[j], h, w)
                        masks.append(m)
                    answers = ask(masks)
                    passes = {s: ans[0] for s, ans in zip(SUBSETS16, answers)}
                    conf = {s: ans[1] for s, ans in zip(SUBSETS16, answers)}
                    for j, v in enumerate(rule_values(cfg.responsibility, passes, conf)):
                        r0, c0, r1, c1 = kids[j]
                        if cfg.concentrate:
                            v = float(v) / float((r1 - r0) * (c1 - c0))
                        resp[r0:r1, c0:c1] += v if exact else float(v)
                    for s, m in zip(PROPER, masks):
                        if passes[s]:
                            candidates.append((int(m.sum()), static, active, a, s, kids))
            if not candidates:
                break
            picked = sorted(candidates, key=lambda c: c[0])[:capacity]  # stable: round order
            jobs = []
            for _, static, active, a, s, kids in picked:
                depth = active[a][1]
                depth_reached = max(depth_reached, depth + 1)
                new = [(kids[j], depth + 1) for j in sorted(s)]
                held = [slot for b, slot in enumerate(active) if b != a]
                static = static.copy()
                if cfg.refine_static:
                    new = new + held
                else:
                    for box, _ in held:
                        static |= box_mask(box, h, w)
                for box, _ in new[cfg.max_active:]:  # held boxes, or children when max_active < 3
                    static |= box_mask(box, h, w)
                new = new[: cfg.max_active]
                jobs.append((static, new))
            if cfg.search_limit is not None and work > cfg.search_limit:
                break
        if exact:
            u = np.array([[int(v * RESOLUTION) for v in row] for row in resp], np.int64)
            assert (u == np.array([[v * RESOLUTION for v in row] for row in resp])).all()
            units.append(u)
            values.append(u / RESOLUTION)
        else:
            units.append(None)
            values.append(resp.astype(np.float64))
        depths.append(depth_reached)
        splits.append(n_splits)
        kept.append(depth_reached > 1 or not cfg.discard_shallow)
    kept_values = [v for v, k in zip(values, kept) if k]
    if cfg.combine == "product":  # rex-xai's multiplicative style, normalised once at the end
        total = np.prod([1.0 + v for v in kept_values], axis=0) if kept_values else np.zeros((h, w))
        total = total / total.max()
    else:
        total = sum(kept_values, np.zeros((h, w)))
    return Reference(units, values, depths, splits, total, kept)


def exact_rank_order(values: np.ndarray) -> np.ndarray:
    """Flat pixel indices in the reference's ranking order: value descending, then flat index
    descending (rex_reference_behavior.md 5.1), from exact values (no floating point)."""
    flat = values.reshape(-1)
    return np.array(sorted(range(flat.size), key=lambda i: (-flat[i], -i)))
