"""Multiple explanations: spotlight search and deduplication by permitted overlap.

Reference behaviour Sec. 6 (fixed-shape form Sec. 12.6); ReX paper Fig. 10-11 (the starfish
with four independent explanations). Besides the primary explanation (global or spatial),
`spotlights` slots each look for a passing circle:

* centres: "responsibility" (default) draws each open slot's centre with probability
  proportional to the responsibility above its `floor_quantile` quantile (default the
  minimum: ReX maps carry a broad floor of credit from large passing boxes), outside the
  primary explanation, the explanations held or rejected so far, the passing circles of the slots
  already held and the first circles of the slots drawn before it in this attempt (so slots
  spread over different peaks, like k-means++ seeding); "uniform" draws uniformly over the
  image (the reference's objective "none").
* each attempt tests the circles of radii `r_0, ..., r_{expansions-1}` (the spatial schedule,
  `spatial.radius_schedule`) around every open slot's centre: every (radius, slot) pair in
  one tester call (`circle_candidates`, pushed `batch_size` circles per model call), option
  `hide_held`: with the pixels of the spotlight explanations already held kept hidden inside
  the circles, so that a circle that merely contains a held explanation does not pass again;
  the primary explanation is never hidden, as a global one can be large and cut through
  other peaks. Each open slot takes its smallest passing radius (`first_passing_radius`);
  the slots are then handled radius by radius, in slot order within a radius, and a slot
  gets its explanation at once: the circle (less the held pixels with `hide_held`)
  restricts the map and the global prefix search runs on it (`spatial.restrict_map`,
  `extract.make_global_extractor`). If it overlaps a held explanation by Dice >
  `permitted_overlap` it is kept as a candidate only, its pixels are avoided from then on and
  the slot draws again; otherwise the slot holds it. With `hide_held`, holding a new
  explanation changes what the larger circles hide, so the larger radii of the slots still
  open are asked again (one more tester call); the result is that of testing one radius at a
  time.
* the search stops when `enough` compatible explanations are held (the primary included),
  every slot holds one, after
  `budget` relocations (reference `max_spotlight_budget`) or after `patience` attempts in a row
  that found nothing (bounds the work spent on slots pushed off the peaks; a deviation from
  the reference's fixed budget).

Keys (`rexjax.keys`): attempt `a` draws with `index(key, a)`, slot `j` within it with `index(., j)`.

Dedup (reference `separate_by`): Dice(a, b) = 2|a & b| / (|a| + |b|); a set of explanations is
compatible when every pair has Dice <= `permitted_overlap`. `select_compatible` returns a
maximum-cardinality compatible set (capped at K), preferring one that contains the primary
explanation, then the smallest total area (the reference sorts its clauses by total size).
Fixed versus the reference: `spotlight_size`/`spotlight_eta` are not dead parameters here
(`initial_radius`/`radius_eta` are the spotlight's own), no unbounded inner random walk.
"""

from __future__ import annotations

import itertools
import time
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.causal.config import RexConfig
from rexjax.keys import index as index_key
from rexjax.keys import spotlight as spotlight_key
from rexjax.causal.extract import make_global_extractor
from rexjax.causal.spatial import circle, make_tester, radius_schedule, render_circles, restrict_map
from rexjax.types import ExplanationPart, MultiExplanation


class SpotlightResult(NamedTuple):
    parts: list  # every sufficient spotlight explanation found (accepted or duplicate), in order
    forward_images: int  # circle tests (blocks, padding included) + prefix searches
    attempts: int  # centre draws made (1 + relocations used)


def sample_centres(key, resp, exclude, centres, radii, fixed, radius: int, weighted: bool, floor_quantile: float = 0.0):
    """Draws a centre `int32[2]` (row, col) for every slot with `fixed[j]` False.

    resp f32[H, W]; exclude bool[H, W] (no centre there when weighted); centres int32[S, 2]
    and radii int32[S] kept where `fixed`. Weighted: P(pixel) ~ max(resp - floor, 0), floor
    the `floor_quantile` quantile of resp (0: its minimum), outside
    `exclude`, the fixed slots' circles and the radius-`radius` circles of the slots drawn
    before; falls back to uniform over the allowed pixels, then over the image, when no mass
    is left. Unweighted: uniform over the image.
    """
    h, w = resp.shape
    s = centres.shape[0]
    weights = jnp.maximum(resp - jnp.quantile(resp, floor_quantile), 0.0) if weighted else jnp.ones_like(resp)
    lit = jax.vmap(lambda c, r, f: circle(c, r, h, w) & f)(centres, radii, fixed).any(0)
    excl = (exclude | lit) if weighted else jnp.zeros_like(exclude)

    def body(j, carry):
        excl, out = carry
        allowed = ~excl
        p = jnp.where(allowed, weights, 0.0)
        p = jnp.where(p.sum() > 0, p, allowed.astype(jnp.float32))
        p = jnp.where(p.sum() > 0, p, 1.0)
        idx = jax.random.categorical(index_key(key, j), jnp.log(p).reshape(-1))
        c = jnp.where(fixed[j], out[j], jnp.stack([idx // w, idx % w]).astype(jnp.int32))
        if weighted:
            excl = excl | circle(c, radius, h, w)
        return excl, out.at[j].set(c)

    return jax.lax.fori_loop(0, s, body, (excl, centres.astype(jnp.int32)))[1]


def circle_candidates(centres: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (radius, slot) circle, radius-major: centres int32[S, 2], radii int32[R] ->
    (centres int32[R * S, 2], radii int32[R * S]); candidate i is radius i // S around slot i % S."""
    centres, radii = np.asarray(centres, np.int32), np.asarray(radii, np.int32)
    return np.tile(centres, (len(radii), 1)), np.repeat(radii, len(centres))


def first_passing_radius(passes: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """passes bool[R, S] (radius, slot), open_ bool[S] -> int[S]: the index of each open slot's
    smallest passing radius, -1 where none passes or the slot is closed."""
    hit = np.asarray(passes, bool) & np.asarray(open_, bool)[None]
    return np.where(hit.any(0), hit.argmax(0), -1)


def make_spotlight_search(
    classify: Callable, config: RexConfig, batch_size: int, global_extractor: Optional[Callable] = None
) -> Callable:
    """Returns `search(key, x, resp, target, full_confidence, primary=None, enough=None,
    permitted_overlap=0.0) -> SpotlightResult`.

    `classify`: MaskedClassifier. `primary` bool[H, W]: an explanation already held (weighted
    centres avoid it; it counts towards `enough`; never hidden with `hide_held`). A slot
    whose explanation overlaps a held one by Dice > `permitted_overlap` is reopened (its
    explanation is still returned as a candidate and its pixels are avoided from then on).
    The search stops when `enough` pairwise-compatible explanations are held (greedy), every
    slot holds one, the budget is spent or `patience` attempts in a row found nothing new.
    Compiles once per image shape. `config.spotlight` holds the search's settings.
    """
    cfg = config.spotlight
    min_confidence = config.extract.min_confidence
    prefix = global_extractor or make_global_extractor(classify, config, batch_size)
    slots = cfg.spotlights
    tester = make_tester(classify, render_circles, batch_size)
    weighted = cfg.centres == "responsibility"
    sampler = jax.jit(sample_centres, static_argnames=("radius", "weighted", "floor_quantile"))

    def search(key, x, resp, target, full_confidence, primary=None, enough=None, permitted_overlap=0.0):
        h, w = x.shape[:2]
        resp = jnp.asarray(resp, jnp.float32)
        radii = radius_schedule(h, w, cfg.initial_radius, cfg.radius_eta, cfg.expansions)
        n_radii = len(radii)
        threshold = jnp.float32(min_confidence * full_confidence)
        primary = np.zeros((h, w), bool) if primary is None else np.asarray(primary, bool)
        accepted = [primary] if primary.any() else []  # explanations held, pairwise compatible
        held = np.zeros((h, w), bool)  # union of the held spotlight ones (for `hide_held`)
        avoid = primary.copy()  # no weighted centres on the primary, held ones, duplicates
        enough = slots + 1 if enough is None else int(enough)

        found = np.zeros(slots, bool)
        centres = np.zeros((slots, 2), np.int32)
        radius = np.zeros(slots, np.int32)
        spent = np.zeros(slots, np.int64)
        parts = []
        images = attempts = idle = 0
        for attempt in range(cfg.budget + 1):
            if len(accepted) >= enough or found.all():
                break
            attempts += 1
            progress = False
            drawn = np.asarray(
                sampler(index_key(key, attempt), resp, jnp.asarray(avoid), jnp.asarray(centres),
                        jnp.asarray(radius), jnp.asarray(found), radius=int(radii[0]), weighted=weighted,
                        floor_quantile=float(cfg.floor_quantile))
            )
            params = tuple(jnp.asarray(a) for a in circle_candidates(drawn, radii))
            open_ = ~found
            first = None  # smallest passing radius per slot, valid while `held` is unchanged
            for i, r in enumerate(radii):
                if not open_.any():
                    break
                if first is None:  # every (radius >= r_i, open slot) pair in one call
                    asked = (np.arange(n_radii) >= i)[:, None] & open_[None]
                    hidden = jnp.asarray(held) if cfg.hide_held else None
                    passes, n = tester(x, params, jnp.asarray(asked.reshape(-1)), hidden, target, threshold)
                    images += int(n)
                    spent[open_] += n_radii - i
                    first = first_passing_radius(np.asarray(passes).reshape(n_radii, slots), open_)
                hit = open_ & (first == i)
                open_ &= ~hit
                for j in np.flatnonzero(hit):
                    region = circle(jnp.asarray(drawn[j]), int(r), h, w)
                    if cfg.hide_held:
                        region = region & ~jnp.asarray(held)
                    ex = prefix(x, restrict_map(resp, region), target, full_confidence)
                    images += ex.forward_images
                    part = ExplanationPart(
                        mask=ex.mask, area=ex.pixels / float(h * w), confidence=ex.confidence,
                        sufficient=ex.sufficient, source="spotlight", forward_images=int(spent[j]) + ex.forward_images,
                        centre=(int(drawn[j, 0]), int(drawn[j, 1])), radius=int(r),
                    )
                    spent[j] = 0
                    if not ex.sufficient or not ex.mask.any():
                        continue  # the slot stays open
                    parts.append(part)
                    progress = True
                    d = dice_matrix(np.stack([ex.mask] + accepted))[0, 1:]
                    if np.all(d <= permitted_overlap) and len(accepted) < enough:
                        accepted.append(ex.mask)
                        held |= ex.mask
                        avoid |= ex.mask
                        found[j], centres[j], radius[j] = True, drawn[j], r
                        if cfg.hide_held:
                            first = None  # the larger circles now hide more: ask them again
                    else:
                        avoid |= ex.mask  # a duplicate: look elsewhere from now on
            idle = 0 if progress else idle + 1
            if cfg.patience is not None and idle >= cfg.patience:
                break
        return SpotlightResult(parts, images, attempts)

    return search


def dice_matrix(masks: np.ndarray) -> np.ndarray:
    """bool[n, H, W] -> f64[n, n], Dice 2|a & b| / (|a| + |b|) (0 for two empty masks)."""
    f = np.asarray(masks, bool).reshape(len(masks), -1).astype(np.float64)
    inter = f @ f.T
    size = np.diag(inter)
    denom = size[:, None] + size[None, :]
    return np.where(denom > 0, 2 * inter / np.maximum(denom, 1), 0.0)


def select_compatible(dice: np.ndarray, areas, permitted_overlap: float, limit: int, prefer: Optional[int] = 0) -> list:
    """Indices of a largest set (<= `limit`) with pairwise Dice <= `permitted_overlap`.

    Ties: sets containing `prefer` first, then the smallest total area, then lexicographic.
    Exact enumeration for n <= 16 (the reference's `separate_by` criterion, capped at
    `limit`); greedy (prefer first, then by area) beyond.
    """
    n = dice.shape[0]
    if not 0.0 <= permitted_overlap <= 1.0:
        raise ValueError(f"permitted_overlap must be in [0, 1], got {permitted_overlap!r}")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit!r}")
    if n == 0:
        return []
    ok = (dice <= permitted_overlap) | np.eye(n, dtype=bool)
    areas = np.asarray(areas, np.float64)
    if n > 16:
        order = sorted(range(n), key=lambda i: (i != prefer, areas[i], i))
        chosen = []
        for i in order:
            if len(chosen) < limit and all(ok[i, j] for j in chosen):
                chosen.append(i)
        return sorted(chosen)
    for size in range(min(limit, n), 0, -1):
        best = None
        for combo in itertools.combinations(range(n), size):
            if all(ok[a, b] for a, b in itertools.combinations(combo, 2)):
                rank = (prefer not in combo, areas[list(combo)].sum(), combo)
                if best is None or rank < best:
                    best = rank
        if best is not None:
            return list(best[2])
    return []


def make_multiple(
    classify: Callable, config: RexConfig, batch_size: int, global_extractor: Optional[Callable] = None
) -> Callable:
    """Returns `multiple(key, x, resp, target, full_confidence, primary, source, k,
    permitted_overlap) -> (MultiExplanation, candidates)`: the spotlight search around the primary explanation
    (`primary`: an Extraction or SpatialExtraction, `source` its strategy name), then the
    largest compatible set of at most `k` sufficient explanations (`select_compatible`).
    candidates: every sufficient, non-empty explanation found (primary first when it is one).

    Keys: the spotlight search uses `keys.spotlight(key)` (the search's iterations use 1..iters).
    """
    spotlights = make_spotlight_search(classify, config, batch_size, global_extractor)

    def multiple(key, x, resp, target, full_confidence, primary, source: str, k: int, permitted_overlap: float):
        start = time.perf_counter()
        h, w = x.shape[:2]
        first = ExplanationPart(
            mask=primary.mask, area=primary.pixels / float(h * w), confidence=primary.confidence,
            sufficient=primary.sufficient, source=source, forward_images=primary.forward_images,
            centre=getattr(primary, "centre", None), radius=getattr(primary, "radius", None),
        )
        held = primary.mask if primary.sufficient else None
        spots = spotlights(
            spotlight_key(key), x, resp, target, full_confidence, primary=held, enough=k,
            permitted_overlap=permitted_overlap,
        )
        candidates = [p for p in [first] + spots.parts if p.sufficient and p.mask.any()]
        if not candidates:
            dice, chosen = np.zeros((0, 0)), []
        else:
            d = dice_matrix(np.stack([p.mask for p in candidates]))
            prefer = 0 if candidates[0] is first else None
            chosen = select_compatible(d, [p.area for p in candidates], permitted_overlap, k, prefer)
            dice = d[np.ix_(chosen, chosen)]
        result = MultiExplanation(
            parts=tuple(candidates[i] for i in chosen),
            candidates=len(candidates),
            spotlights=config.spotlight.spotlights,
            spotlights_found=len(spots.parts),  # sufficient spotlight explanations, duplicates included
            permitted_overlap=float(permitted_overlap),
            dice=dice,
            forward_images=spots.forward_images,
            wall_time=time.perf_counter() - start,
        )
        return result, candidates

    return multiple
