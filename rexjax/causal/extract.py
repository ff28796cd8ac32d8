"""Sufficient explanations from a responsibility map: the greedy global strategy.

ReX paper Alg. 3 lines 10-17; reference behaviour Sec. 5.1-5.2. Pixels are ranked by
responsibility, descending, ties broken by descending flat index (row-major), exactly as the
reference (so within a box of equal responsibility the bottom-right pixels come first). The
explanation is a prefix of `k * prefix_step` ranked pixels, k = 1, 2, ..., that the model
classifies as the target with confidence >= `min_confidence` x full-image confidence ("passes").
With `prefix_growth` g > 0 (a departure from the reference; RexConfig's default 0.05) the prefix lengths
grow geometrically instead (`prefix_lengths`: each max(previous + step, ceil(previous (1 +
g)))), so the linear search asks about log(area) prefixes instead of area / step; the first
passing length on that grid is returned. With `prune_grids` (g1, g2, ...) (a departure from
the reference; RexConfig's default (4, 8, 16)) the passing prefix is then shrunk, coarse to
fine: for each g, drop the cells of a grid of g cells per axis (g x g on images) it does not
need (`prune`: two more rounds of model calls, at most `prune_candidates` images each, per
grid; the result still passes). Signals [N, C] and volumes [D, H, W, C] are ranked and
pruned the same way, element by element (flat row-major index for the ties).
Two searches (`RexConfig.prefix_search`), both one jitted `lax.while_loop`:

* "linear" (default, the reference's): prefixes k = 1, 2, ... `batch_size` at a time,
  stopping at the first block with a hit: the smallest passing k. The hit's own prefix is
  returned and the last, partial block is evaluated (both are bugs of the reference, its
  Sec. 11.2, bug 7). Cost ceil(k / b) blocks of b images (the tool's median on Lite0: 448).
* "coarse" (coarse to fine): the first model call asks k = 1..b/2 (a linear head)
  and b/2 lengths spaced geometrically up to `steps` (`first_grid`); then it keeps an
  interval (lo, hi] where prefix lo fails (lo = 0: nothing shown) and prefix hi passes, the
  first hit and the asked length before it, and each further call asks b lengths spread
  evenly over it (lo + ceil(i (hi - lo) / b), i = 1..b; every k when hi - lo <= b) and keeps
  the sub-interval ending at the first hit, until hi = lo + 1; k = hi. Cost: one call when
  k <= b/2, else about 1 + log_b(interval) calls (224x224, prefix_step 10, b 16: 2-4 calls,
  32-64 images), whatever k is.
  What it returns: a passing prefix k whose prefix k - 1 fails (or k = 1), and k >= the linear
  search's k, equal to it when that is <= b/2. When passing is monotone in k (showing more of
  the ranking never turns a pass into a fail) the two are equal; otherwise coarse may stop
  at a later pass-after-fail boundary than the first one (tests/causal/test_extract.py
  checks these statements). Real models are not monotone: on Lite0 (3 images x 2 keys,
  iters 20) coarse saved ~150 of ~5150 images but returned 5x / 4x larger explanations on
  two of six (ladybird 0.4 % -> 2.0 %, starfish 4.7 % -> 18.6 %): not the default
  (BUILD_NOTES). When
  none of the first call's prefixes passes (the whole image fails: a target that is not the
  top-1 class) the linear search runs after it, so both find a prefix in the same cases.

Not found (no prefix passes, i.e. not even the whole image is classified as the target with
enough confidence): the mask is all False, 0 pixels, `sufficient` False, confidence 0.0 -
the reference's `final_mask = None` / all-False explanation, and the same convention as the
spatial strategy (`spatial.py`) and contrastive search (not the full image, which would look
like a 100% explanation).
"""

from __future__ import annotations

import threading
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.batching import push
from rexjax.causal.config import RexConfig


class Extraction(NamedTuple):
    mask: np.ndarray  # bool[*S] (images: [H, W]), the explanation (True = kept; all False when not found)
    confidence: float  # target probability with only the explanation visible (0.0 when not found)
    sufficient: bool  # a passing prefix was found
    pixels: int  # pixels (elements) in the explanation
    forward_images: int


def pixel_rank(resp: jax.Array) -> jax.Array:
    """`resp[*S]` (images: [H, W]) -> `int32[*S]` rank of each element (0 = most responsible).

    Ties: larger flat index first (the reference's descending (row, col) order; row-major in N-D).
    """
    flat = resp.reshape(-1)
    index = jnp.arange(flat.size)
    order = jnp.lexsort((-index, -flat))  # last key is primary
    return jnp.zeros_like(index).at[order].set(index).reshape(resp.shape).astype(jnp.int32)


class ProgressSink:
    """Where one extractor's compiled linear search reports its blocks of prefixes: a host
    callback `(done, total)` per block, bound when the extractor is built, so the program is
    the same with or without a listener and two extractors never share a bar. It forwards to
    `on_progress` (given at construction) and to the tqdm `bar` that `extract(...,
    progress=True)` sets for the duration of one call (`lock`: one bar at a time on this
    extractor)."""

    def __init__(self, on_progress: Optional[Callable[[int, int], None]] = None):
        self.on_progress = on_progress
        self.bar = None
        self.lock = threading.Lock()

    def __call__(self, done, total):
        done, total = int(done), int(total)
        if self.on_progress is not None:
            self.on_progress(done, total)
        bar = self.bar
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)


def _linear(ask: Callable, steps: int, batch_size: int, on_chunk: Optional[Callable] = None):
    """Smallest passing k in 1..steps, blocks of b in order -> (k or 0, its confidence, images).

    `on_chunk(done, total)`: a host callback after each block (`batching.push`)."""
    out = push(
        lambda idx: ask(idx + 1), steps, batch_size=batch_size, read=lambda v, idx: v, stop=lambda v: v[0],
        on_chunk=on_chunk,
    )
    hit, conf = out.values
    first = jnp.argmax(hit)
    return jnp.where(hit.any(), first + 1, 0), conf[first], out.forward_images


def first_grid(steps: int, b: int) -> np.ndarray:
    """int32[b]: the coarse search's first b prefix lengths (module doc): 1..b//2 (the linear
    head), then geometrically spaced up to `steps` (repeated at the end when short)."""
    head = np.arange(1, min(b // 2, steps) + 1)
    tail = np.round(np.geomspace(max(len(head), 1), steps, b - len(head) + 1)[1:]).astype(int)
    grid = np.unique(np.concatenate([head, tail, [steps]]))[:b]
    return np.concatenate([grid, np.full(b - len(grid), steps)]).astype(np.int32)


def _coarse(ask: Callable, steps: int, batch_size: int, on_chunk: Optional[Callable] = None):
    """Coarse-to-fine boundary search over k in 1..steps (module doc) -> (k or 0, confidence, images).

    `on_chunk`: passed to the linear search it falls back on (the coarse calls report nothing)."""
    b = min(max(batch_size, 2), steps)  # two prefixes at least, or the interval never narrows
    i = jnp.arange(1, b + 1, dtype=jnp.int32)
    grid = jnp.asarray(first_grid(steps, b))

    def cond(c):
        lo, hi, found, _, level = c
        return (level == 0) | (found & (hi - lo > 1))

    def body(c):
        lo, hi, _, _, level = c
        width = hi - lo
        even = lo + jnp.where(width >= b, -(-(i * width) // b), jnp.minimum(i, width))
        k = jnp.where(level == 0, grid, even)
        hit, conf = ask(k)
        first = jnp.argmax(hit)
        new_lo = jnp.where(first > 0, k[jnp.maximum(first - 1, 0)], lo)
        return new_lo, k[first], hit.any(), conf[first], level + 1

    init = (jnp.int32(0), jnp.int32(steps), jnp.bool_(True), jnp.float32(0.0), jnp.int32(0))
    _, hi, found, conf, levels = jax.lax.while_loop(cond, body, init)
    # No hit in the first call means the whole image fails (the target is not the top-1
    # class): only the linear search can then tell whether some shorter prefix passes.
    fallback = lambda: (lambda k, c, f: (k, c, f + levels * b))(*_linear(ask, steps, batch_size, on_chunk))
    return jax.lax.cond(found, lambda: (hi, conf, levels * b), fallback)


def grid_cells(*shape_and_g: int) -> np.ndarray:
    """`grid_cells(*shape, g)` -> int32[*shape]: each element's cell in a grid of g cells per
    axis, row-major (index i of an axis of length n is in cell i g // n of that axis); images:
    `grid_cells(h, w, g)`, a g x g grid (row r is in cell row r g // h)."""
    *shape, g = shape_and_g
    cells = np.zeros((), np.int64)
    for n in shape:
        cells = cells[..., None] * g + np.arange(n) * g // n
    return cells.astype(np.int32)


def prune(passes: Callable, mask, resp, confidence: float, cells, m: int, batch_size: int):
    """Drops grid cells a passing explanation does not need (one grid of `RexConfig.prune_grids`).

    `passes(masks bool[b, *S]) -> (passes bool[b], confidence f32[b])`, the prefix search's
    test; `mask` bool[*S] (images: [H, W]) passes; `cells` int[*S] >= 0, a cell id per element. Candidates: the m cells
    that `mask` touches with the lowest mean responsibility over its pixels there (ties: lower
    cell index). Call 1 asks `mask` without each candidate alone; the candidates whose removal
    alone still passes are "removable", in candidate order. Call 2 asks `mask` without the
    first j removable cells, j = 1, 2, ..., in blocks, stopping after the first block with a
    fail; the result drops the first J, J the longest run of passes from j = 1 (0: `mask`
    unchanged), and at most all touched cells but one: when the model passes with nothing
    shown (its class on a blank image) the explanation keeps one cell, as the prefix search
    keeps one chunk. Every returned mask was asked and passed, so the explanation stays
    sufficient whatever the model; it only shrinks.

    Host-driven: `passes` is called on blocks of b = min(batch_size, m) masks (the last block
    padded by repeating its last mask), so one compiled model call serves every grid; a jitted
    prune inlined the model once per call site, seven copies of ViT-B/32's weights, and was
    killed for memory at 11 GB (BUILD_NOTES). Returns (mask bool[*S], its confidence, forward images = rows pushed).
    """
    mask, resp, cells = np.asarray(mask, bool), np.asarray(resp, np.float64), np.asarray(cells)
    flat = cells.reshape(-1)
    count = np.bincount(flat, weights=mask.reshape(-1))
    total = np.bincount(flat, weights=np.where(mask, resp, 0.0).reshape(-1))
    touched = np.flatnonzero(count > 0)
    mean = total[touched] / count[touched]
    candidates = touched[np.lexsort((touched, mean))][:m]
    b = max(1, min(int(batch_size), m))
    forward = 0

    def ask(masks):  # list of bool[*S] (<= b) -> (passes, confidences) for them
        nonlocal forward
        block = np.stack(masks + [masks[-1]] * (b - len(masks)))
        ok, conf = passes(jnp.asarray(block))
        forward += b
        return np.asarray(ok)[: len(masks)], np.asarray(conf)[: len(masks)]

    alone = [mask & (cells != c) for c in candidates]
    ok = np.concatenate([ask(alone[i : i + b])[0] for i in range(0, len(alone), b)]) if alone else np.zeros(0, bool)
    removable = candidates[ok]
    n = min(len(removable), len(touched) - 1)
    keep, kept_conf = mask, confidence
    for start in range(0, n, b):
        joint = [mask & ~np.isin(cells, removable[:j]) for j in range(start + 1, min(start + b, n) + 1)]
        ok, conf = ask(joint)
        run = int(np.cumprod(ok).sum())
        if run:
            keep, kept_conf = joint[run - 1], float(conf[run - 1])
        if run < len(joint):
            break
    return keep, kept_conf, forward


def prefix_lengths(n: int, chunk: int, growth: float = 0.0) -> np.ndarray:
    """int32[steps]: the pixel counts of the prefixes the extraction may show, ascending, the
    last = n. growth 0: k * chunk (the reference's chunks); growth g > 0: each length is
    max(previous + chunk, ceil(previous * (1 + g))), so a length is at most a factor 1 + g
    (or one chunk) above the one before it and the grid has about log(n / chunk) / log(1 + g)
    lengths past the first chunk / g pixels instead of n / chunk."""
    if growth == 0:
        return np.minimum(np.arange(1, -(-n // chunk) + 1) * chunk, n).astype(np.int32)
    out = [min(chunk, n)]
    while out[-1] < n:
        out.append(min(n, max(out[-1] + chunk, int(np.ceil(out[-1] * (1.0 + growth))))))
    return np.asarray(out, np.int32)


def make_global_extractor(
    classify: Callable, config: RexConfig, batch_size: int, on_progress: Optional[Callable[[int, int], None]] = None
) -> Callable:
    """Returns `extract(x, resp, target, full_confidence, *, progress=False) -> Extraction` (jitted core).

    `classify`: MaskedClassifier `(x[*S,C], masks[B,*S]) -> probs[B,K]` (S: 1-3 spatial axes); `config`: its
    `prefix_step` and `extract` part are used; `batch_size`: images per model call.
    `on_progress(done, total)`: called on the host after each block of prefixes the linear
    search asks (this extractor's `ProgressSink`), before `extract` returns.
    """
    cfg = config.extract
    chunk = config.prefix_step
    search = _linear if cfg.prefix_search == "linear" else _coarse
    sink = ProgressSink(on_progress)

    @jax.jit
    def ask_masks(x, masks, target, full_confidence):
        """bool[b, *S] -> (passes bool[b], confidence f32[b]): the target is the top-1 class
        with confidence >= min_confidence x full-image confidence. The prefix search calls it
        inside `run` (inlined), the prune from the host (compiled once)."""
        probs = classify(x, masks)
        ok = (jnp.argmax(probs, -1) == target) & (probs[:, target] >= cfg.min_confidence * full_confidence)
        return ok, probs[:, target]

    @jax.jit
    def run(x, resp, target, full_confidence):
        rank = pixel_rank(resp)
        # prefix k = 1..steps shows the top lengths[k - 1] pixels; the last shows every pixel
        lengths = jnp.asarray(prefix_lengths(rank.size, chunk, cfg.prefix_growth))
        steps = lengths.shape[0]

        def ask(k):  # int32[b] prefix indices 1..steps -> (passes bool[b], confidence f32[b])
            return ask_masks(x, rank[None] < lengths[k - 1].reshape((-1,) + (1,) * rank.ndim), target, full_confidence)

        k, conf, forward = search(ask, steps, batch_size, sink)
        found = k > 0  # not found: nothing (module doc)
        mask = rank < jnp.where(found, lengths[jnp.maximum(k, 1) - 1], 0)
        return mask, jnp.where(found, conf, 0.0), found, forward

    def extract(x, resp, target, full_confidence, *, progress: bool = False) -> Extraction:
        """`progress`: a tqdm bar on stderr over the prefixes asked (the linear search; the
        coarse one takes 2-4 model calls)."""
        resp = jnp.asarray(resp, jnp.float32)
        if not progress:
            mask, conf, found, forward = run(x, resp, target, full_confidence)
            if on_progress is not None:
                jax.effects_barrier()  # every block reported before returning
        else:
            from tqdm.auto import tqdm

            with sink.lock, tqdm(desc="extract", unit="prefix", leave=False, mininterval=0) as bar:
                sink.bar = bar
                try:
                    mask, conf, found, forward = jax.block_until_ready(run(x, resp, target, full_confidence))
                    jax.effects_barrier()
                finally:
                    sink.bar = None
        mask, conf, forward = np.asarray(mask), float(conf), int(forward)
        if bool(found) and cfg.prune_grids:
            target_, full_, resp = jnp.int32(target), jnp.float32(full_confidence), np.asarray(resp)
            for g in cfg.prune_grids:  # coarse to fine (host-driven: one compiled model call, `prune`)
                mask, conf, more = prune(lambda masks: ask_masks(x, masks, target_, full_), mask, resp, conf,
                                         grid_cells(*mask.shape, g), prune_cells(cfg.prune_candidates, g, mask.ndim), batch_size)
                forward += more
        return Extraction(mask, conf, bool(found), int(mask.sum()), forward)

    return extract


def prune_cells(candidates: int, g: int, rank: int) -> int:
    """Cells the prune tries per model call on a g-per-axis grid over `rank` position axes:
    `candidates` for signals and images, twice as many for volumes (a volume's grid has g
    times an image's cells; with 32 the 3-D oracles' AND case reached median 3.2x, worst
    4.6x the needed voxels, with 64 median 1.07x, worst 1.3x), never more than the grid has."""
    return min(candidates * (2 if rank >= 3 else 1), g**rank)
