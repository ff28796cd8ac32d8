"""Responsibility search: refinement rounds and iterations, all iterations in lockstep.

ReX paper Alg. 2-3; reference behaviour Sec. 4. Each iteration (one random partition
lineage, Alg. 3's N) holds a queue of `Q` jobs. A job is a set of up to `max_active`
*active* boxes (split in this round, one at a time) plus a *static* visible region (boxes
held at their original values while another box is refined, paper Sec. 5.2). Splitting
active box `a` of job `q` gives 4 children and 14 mutants: visible = static | other active
boxes | the subset of children. Passing mutants (top-1 = target, confidence >= filter x
full) credit responsibility to their children (`responsibility.py`); the `Q` smallest
passing mutants of the round become the next jobs, their children active at depth + 1
and everything else they showed static (`refine_static=True`: the boxes held while `a` was
split become active too, at their own depth, the overflow static). Depth is kept per
active box, so a held box is split as deep as its own level allows and `depth_reached`
(the deepest children queued; `discard_shallow` drops iterations with depth <= 1) is not
inflated by its partners.

The empty and the full subset of a split (rules "sufficient" and "alg1" ask whether a child
is needed, i.e. whether S - {j} fails, with S - {j} possibly empty): the full subset is the
job's whole region, the passing mutant it was queued from (at the root the full image,
`full_passes`). The empty subset is the job's region without `a`; it can pass (the static
region or the other active boxes can be enough), so it is never assumed to fail. For a child
`c` queued from mutant `S` it is the mutant `S - {c}` of the same split, already evaluated
(or, when S = {c}, that split's own empty subset), and is carried in the state
(`empty_known`, `empty_pass`). It is evaluated as a 15th mutant of the split when unknown:
the root's (the blank image, once per iteration) and, with `refine_static`, a held box's
(the region without it was never shown). These extra images are in `forward_images` and
`mutants`; "tool", "weighted" and "main_effect" never ask them.

Exact accumulation: the rules "alg1", "sufficient" and "tool" credit multiples of 1/12; each
iteration's map is an int32 count of 1/RESOLUTION units painted with an integer difference
array, iterations are summed in int64, and the f32 map returned is units / 12, so pixels with
equal responsibility have bit-equal values and the ranking's tie order (flat index) decides
between them, never rounding residue. "weighted", "main_effect" and `concentrate` (credit /
child area, paper Alg. 3 line 6) are float; they are painted rectangle by rectangle
(`partition.paint`), so pixels covered by the same rectangles are still bit-equal.

One round = one jitted call for all `iters` iterations: the round's mutants are laid out
with fixed shape `[iters, Q, A, 15]`, compacted on device to the valid ones, and pushed
through the model in chunks of `batch_size` inside a `lax.while_loop`; masks are rendered
from rectangles on device (`rexjax.batching.push`). The host only checks between rounds
whether all are done.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from rexjax import checks
from rexjax.batching import push
from rexjax.causal.config import COMBINES, SearchConfig
from rexjax.causal.partition import N_MUTANTS, SUBSETS, box_area, paint, render, split_box
from rexjax.keys import iteration as iteration_key
from rexjax.causal.responsibility import NEEDS_EMPTY, RESOLUTION, WITHOUT, child_responsibility, units



_INT_MAX = jnp.iinfo(jnp.int32).max
# The plan's subsets of a split's children: the 14 mutants, then the empty subset (row 14,
# evaluated only when its pass/fail is not known, see the module doc).
PLAN_SUBSETS = np.concatenate([SUBSETS, np.zeros((1, 4), bool)])
N_PLAN = len(PLAN_SUBSETS)  # 15
EMPTY = N_MUTANTS  # row of the empty subset
# _DROP[s, j]: row of mutant s without child j (EMPTY when s = {j}); only used for j in s.
_DROP = WITHOUT[:N_MUTANTS]


class IterState(NamedTuple):
    """State of one iteration (a leading `iters` axis when batched)."""

    key: jax.Array  # PRNG key of the iteration
    static: jax.Array  # bool[Q, *S] region each job shows but does not refine (S: the spatial shape)
    active: jax.Array  # int32[Q, A, 2k] boxes each job refines (A = max_active; k = len(S), partition.py)
    active_valid: jax.Array  # bool[Q, A]
    depth: jax.Array  # int32[Q, A] tree depth of each active box (root 0)
    empty_known: jax.Array  # bool[Q, A] the job's region without this box was evaluated
    empty_pass: jax.Array  # bool[Q, A] ... and passed (meaningful where empty_known)
    full_pass: jax.Array  # bool[Q] the job's whole region passes (True but at a failing root)
    job_valid: jax.Array  # bool[Q]
    resp: jax.Array  # int32[*S] units of 1/RESOLUTION (exact rules) or f32[*S]
    depth_reached: jax.Array  # int32, deepest children queued
    work: jax.Array  # int32, 14 x splits (what `search_limit` bounds)
    mutants: jax.Array  # int32, mutants evaluated (work + empty subsets asked), no padding
    done: jax.Array  # bool


class SearchResult(NamedTuple):
    responsibility: np.ndarray  # f32[*S] (images: [H, W]), the kept iterations combined (`combine_iterations`)
    per_iteration: np.ndarray  # f32[iters, *S] each iteration's map
    units: Optional[np.ndarray]  # int32[iters, *S] the same in units of 1/resolution (exact rules), else None
    resolution: int  # RESOLUTION for the exact rules, 1 for float rules
    depth_reached: np.ndarray  # int32[iters]
    kept: np.ndarray  # bool[iters] iterations combined into `responsibility`
    forward_images: int  # images pushed, padding of the last chunk of each round included
    mutants: int  # mutant images evaluated, without padding
    iteration_mutants: np.ndarray  # int32[iters] the same per iteration
    rounds: int


def init_state(
    key: jax.Array, shape: tuple, capacity: int, max_active: int, dtype=jnp.int32, full_pass=True
) -> IterState:
    """One job per iteration over inputs of spatial `shape` (k axes): the root box, nothing
    static; its empty subset (the blank input) unknown, its full subset (the input) passing as
    `full_pass` says."""
    shape = tuple(shape)
    k = len(shape)
    active = jnp.zeros((capacity, max_active, 2 * k), jnp.int32).at[0, 0].set(
        jnp.array((0,) * k + shape, jnp.int32)
    )
    slots = jnp.zeros((capacity, max_active), bool)
    return IterState(
        key=key,
        static=jnp.zeros((capacity,) + shape, bool),
        active=active,
        active_valid=slots.at[0, 0].set(True),
        depth=jnp.zeros((capacity, max_active), jnp.int32),
        empty_known=slots,
        empty_pass=slots,
        full_pass=jnp.ones((capacity,), bool).at[0].set(full_pass),
        job_valid=jnp.zeros((capacity,), bool).at[0].set(True),
        resp=jnp.zeros(shape, dtype),
        depth_reached=jnp.zeros((), jnp.int32),
        work=jnp.zeros((), jnp.int32),
        mutants=jnp.zeros((), jnp.int32),
        done=jnp.zeros((), bool),
    )


class _Plan(NamedTuple):
    children: jax.Array  # int32[Q, A, 4, 2k]
    evaluated: jax.Array  # bool[Q, A] splits made this round
    ask_empty: jax.Array  # bool[Q, A] splits whose empty subset is evaluated too
    rects: jax.Array  # int32[Q, A, 15, 4 + A, 2k] visible boxes of each mutant (+ static)
    rect_valid: jax.Array  # bool[Q, A, 15, 4 + A]
    others_valid: jax.Array  # bool[Q, A, A] the other active boxes of the job
    area: jax.Array  # int32[Q, A, 15] visible pixels of each mutant


def _plan(st: IterState, cfg: SearchConfig) -> _Plan:
    """Splits every active box of every job; lays out the 14 (+1) mutants of each split."""
    split = lambda box, depth: split_box(
        st.key,
        box,
        depth,
        min_box_size=cfg.min_box_size,
        tree_depth=cfg.tree_depth,
        distribution=cfg.distribution,
        distribution_args=cfg.distribution_args,
    )
    q, a, b = st.active.shape
    children, splittable = jax.vmap(jax.vmap(split))(st.active, st.depth)
    evaluated = st.job_valid[:, None] & st.active_valid & splittable & ~st.done
    ask_empty = evaluated & ~st.empty_known if cfg.responsibility in NEEDS_EMPTY else jnp.zeros_like(evaluated)
    others_valid = st.active_valid[:, None, :] & ~jnp.eye(a, dtype=bool)[None]
    rects = jnp.concatenate(
        [
            jnp.broadcast_to(children[:, :, None], (q, a, N_PLAN, 4, b)),
            jnp.broadcast_to(st.active[:, None, None], (q, a, N_PLAN, a, b)),
        ],
        axis=3,
    )
    rect_valid = jnp.concatenate(
        [
            jnp.broadcast_to(jnp.asarray(PLAN_SUBSETS), (q, a, N_PLAN, 4)),
            jnp.broadcast_to(others_valid[:, :, None], (q, a, N_PLAN, a)),
        ],
        axis=3,
    )
    static_area = st.static.sum(axis=tuple(range(1, st.static.ndim)), dtype=jnp.int32)
    area = static_area[:, None, None] + (box_area(rects) * rect_valid).sum(-1)
    return _Plan(children, evaluated, ask_empty, rects, rect_valid, others_valid, area)


def _judge(st: IterState, plan: _Plan, top1, conf, target, threshold):
    """Which mutants pass. top1 int32[Q, A, 15], conf f32[Q, A, 15] (the plan's rows) ->
    (passes bool[Q, A, 14]: evaluated and top-1 = target with conf >= threshold; empty
    bool[Q, A]: each split's empty subset passes, carried in the state when known, else its
    row 14)."""
    ok_all = (top1 == target) & (conf >= threshold)  # meaningful where evaluated
    passes = plan.evaluated[..., None] & ok_all[..., :N_MUTANTS]
    empty = jnp.where(st.empty_known, st.empty_pass, ok_all[..., EMPTY])
    return passes, empty


def _credit(st: IterState, plan: _Plan, passes, conf, empty, cfg: SearchConfig) -> jax.Array:
    """`st.resp` [*S] plus the responsibility of every evaluated split's 4 children (the
    rule `cfg.responsibility` on passes bool[Q, A, 14], conf f32[Q, A, 15], empty bool[Q, A];
    / child area with `concentrate`, paper Alg. 3 line 6; in units with `exact`), painted
    over the children's rectangles."""
    full = jnp.broadcast_to(st.full_pass[:, None], empty.shape)
    rule = lambda p, c, e, f: child_responsibility(p, c, cfg.responsibility, empty_passes=e, full_passes=f)
    inc = jax.vmap(jax.vmap(rule))(passes, conf[..., :N_MUTANTS], empty, full)
    inc = jnp.where(plan.evaluated[..., None], inc, 0.0)  # [Q, A, 4]
    if cfg.concentrate:  # paper Alg. 3 line 6: R(P) / |P|
        inc = inc / jnp.maximum(box_area(plan.children), 1).astype(jnp.float32)
    if cfg.exact:
        inc = units(inc)
    return paint(st.resp, plan.children.reshape(-1, plan.children.shape[-1]), inc.reshape(-1))


class _Picked(NamedTuple):
    """The next round's jobs: the round's `cap` smallest passing mutants (int32[cap] each)."""

    ok: jax.Array  # bool[cap] the pick is a passing mutant (else the job is empty)
    job: jax.Array  # int32[cap] the job it was a mutant of
    box: jax.Array  # int32[cap] the active box whose split made it
    subset: jax.Array  # int32[cap] its row in SUBSETS


def _pick(passes, area, cap: int) -> _Picked:
    """The `cap` smallest passing mutants of passes bool[Q, A, 14] by area int32[Q, A, 15]
    (stable: ties keep job, box and combination order)."""
    key_area = jnp.where(passes, area[..., :N_MUTANTS], _INT_MAX).reshape(-1)
    pick = jnp.argsort(key_area, stable=True)[:cap]
    job, box, subset = jnp.unravel_index(pick, passes.shape)
    return _Picked(passes.reshape(-1)[pick], job, box, subset)


def _candidate_slots(st: IterState, plan: _Plan, picked: _Picked, passes, empty, refine_static: bool):
    """The boxes each next job may refine, in order, before the cut at `max_active`.

    -> (slots, held, held_valid). slots: (boxes int32[cap, K, 2k], valid, depth int32, known,
    empty_pass bool[cap, K]): the children in the picked mutant's subset S (depth + 1, their
    empty subset S - {child} known from this round), then with `refine_static` the boxes held
    while the split was made (their own depth, empty subset unknown: never shown), else
    padding to A; held int32[cap, A, 2k], held_valid bool[cap, A]: those held boxes.
    """
    pq, pa, ps = picked.job, picked.box, picked.subset
    cap, n_active = pq.shape[0], plan.evaluated.shape[1]
    subsets = jnp.asarray(SUBSETS)[ps]  # [cap, 4]
    order = jnp.argsort(~subsets, axis=1, stable=True)[:, :3]  # the children in S first
    kids = jnp.take_along_axis(plan.children[pq, pa], order[..., None], axis=1)  # [cap, 3, 2k]
    kids_valid = jnp.take_along_axis(subsets, order, axis=1)
    kids_depth = jnp.broadcast_to(st.depth[pq, pa][:, None] + 1, kids_valid.shape)
    # A kid's empty subset next round (the job's region without it) is S - {kid}: a mutant
    # of this split, or this split's empty subset when S = {kid}.
    with_empty = jnp.concatenate([passes, empty[..., None]], axis=-1)  # [Q, A, 15]
    drop = jnp.asarray(_DROP)[ps[:, None], order]  # [cap, 3]
    kids_empty = with_empty[pq[:, None], pa[:, None], drop]
    kids_known = jnp.ones_like(kids_valid)
    held, held_valid = st.active[pq], plan.others_valid[pq, pa]  # shown while `a` was split
    held_depth = st.depth[pq]  # held boxes keep their own depth
    if refine_static:
        # Paper Sec. 5.2: boxes held at their values while another box was refined are
        # refined in turn next round: children first, then held boxes, `max_active` at most;
        # the overflow stays visible as static region. A held box's empty subset (the
        # region without it) was never evaluated: asked next round.
        slots = (
            jnp.concatenate([kids, held], axis=1),
            jnp.concatenate([kids_valid, held_valid], axis=1),
            jnp.concatenate([kids_depth, held_depth], axis=1),
            jnp.concatenate([kids_known, jnp.zeros_like(held_valid)], axis=1),
            jnp.concatenate([kids_empty, jnp.zeros_like(held_valid)], axis=1),
        )
    else:  # pad to `max_active` slots so the state keeps its shape
        extra = max(n_active - 3, 0)
        pad = lambda v: jnp.concatenate([v, jnp.zeros((cap, extra) + v.shape[2:], v.dtype)], axis=1)
        slots = (pad(kids), pad(kids_valid), pad(kids_depth), pad(kids_known), pad(kids_empty))
    return slots, held, held_valid


def _next_jobs(st: IterState, picked: _Picked, slots, held, held_valid, n_active: int, refine_static: bool):
    """Cuts the candidate slots (`_candidate_slots`) at A = `n_active` valid boxes first.

    -> (active int32[cap, A, 2k], active_valid, depth int32, empty_known, empty_pass bool[cap, A],
    static bool[cap, *S]): slots beyond A (held boxes, or children when A < 3) stay visible
    as static region, added to the picked job's own; without refine_static the held boxes do too.
    """
    shape = st.resp.shape
    keep = jnp.argsort(~slots[1], axis=1, stable=True)
    boxes, valid, depth, known, empty_pass = (
        jnp.take_along_axis(v, keep[..., None] if v.ndim == 3 else keep, axis=1) for v in slots
    )
    to_static, to_static_valid = boxes[:, n_active:], valid[:, n_active:]
    if not refine_static:
        to_static = jnp.concatenate([to_static, held], axis=1)
        to_static_valid = jnp.concatenate([to_static_valid, held_valid], axis=1)
    static = st.static[picked.job] | jax.vmap(lambda r, v: render(r, v, *shape))(to_static, to_static_valid)
    known = known[:, :n_active]
    return (boxes[:, :n_active], valid[:, :n_active], depth[:, :n_active], known,
            empty_pass[:, :n_active] & known, static)


def _counters(st: IterState, plan: _Plan, picked: _Picked, cfg: SearchConfig):
    """-> (depth_reached, work, mutants int32, done bool) after the round: the deepest children
    queued, 14 x splits made, mutants evaluated (empty subsets asked included), and done when
    nothing passed or the work exceeds `search_limit`."""
    depth_reached = jnp.maximum(st.depth_reached, jnp.max(jnp.where(picked.ok, st.depth[picked.job, picked.box] + 1, 0)))
    splits = plan.evaluated.sum(dtype=jnp.int32)
    work = st.work + N_MUTANTS * splits
    mutants = st.mutants + N_MUTANTS * splits + plan.ask_empty.sum(dtype=jnp.int32)
    done = st.done | ~picked.ok.any()
    if cfg.search_limit is not None:
        done = done | (work > cfg.search_limit)
    return depth_reached, work, mutants, done


def _update(st: IterState, plan: _Plan, top1, conf, target, threshold, cfg: SearchConfig) -> IterState:
    """One iteration's state after its round: top1 int32[Q, A, 15], conf f32[Q, A, 15] the
    model's answers for the plan's mutants; credits responsibility (`_credit`), queues the
    smallest passing mutants (`_pick`) with their boxes (`_candidate_slots`, `_next_jobs`)
    and updates the counters (`_counters`)."""
    n_active = plan.evaluated.shape[1]
    passes, empty = _judge(st, plan, top1, conf, target, threshold)
    resp = _credit(st, plan, passes, conf, empty, cfg)
    picked = _pick(passes, plan.area, st.job_valid.shape[0])
    slots, held, held_valid = _candidate_slots(st, plan, picked, passes, empty, cfg.refine_static)
    active, valid, depth, known, empty_pass, static = _next_jobs(
        st, picked, slots, held, held_valid, n_active, cfg.refine_static)
    depth_reached, work, mutants, done = _counters(st, plan, picked, cfg)
    return st._replace(  # the key is the iteration's own, unchanged
        static=static, active=active, active_valid=valid, depth=depth, empty_known=known, empty_pass=empty_pass,
        full_pass=jnp.ones_like(picked.ok), job_valid=picked.ok, resp=resp,
        depth_reached=depth_reached, work=work, mutants=mutants, done=done,
    )


def _rows_classifier(classify: Callable, n_images: int) -> Callable:
    """`(xs[I,*S,C], image i32[b], masks[b,*S]) -> probs[b,K]`: row r shows xs[image[r]].

    One image: the MaskedClassifier as it is (x broadcast over the batch). Several: the
    classifier vmapped over rows with a batch of one, which XLA folds back into one batch of
    b images (each row's own image, also for "mean"/"blur" fills and ConvAD)."""
    if n_images == 1:
        return lambda xs, image, masks: classify(xs[0], masks)
    one = lambda x, m: classify(x, m[None])[0]
    return lambda xs, image, masks: jax.vmap(one)(xs[image], masks)


def make_round(classify: Callable, cfg: SearchConfig, batch_size: int, n_images: int = 1, mesh=None) -> Callable:
    """Returns jitted `round(xs, state, lane_image, target, threshold) -> (state, forward_images)`.

    `classify` is a MaskedClassifier `(x[*S,C], masks[B,*S]) -> probs[B,K]` (S the spatial
    shape: [N], [H, W] or [D, H, W]); `xs` f32[I,*S,C] the inputs in lockstep; `state` an
    IterState with a leading lane axis L (one lane = one iteration of one image); `lane_image` int32[L] the image of each lane (index
    into `xs`), `target` int32[L] and `threshold` f32[L] (the absolute confidence a passing
    mutant needs) per lane. The round's valid mutants of every lane go through one
    `batching.push` (compacted), so the model sees full batches whatever the image count.
    `mesh`: a 1-D `jax.sharding.Mesh` (axis "images"): every argument is split along its
    leading axis over the mesh's devices and each device runs the round on its own lanes
    (`lane_image` then indexes the device's block of `xs`); `forward_images` comes back per
    device, int32[D].
    """
    rows = _rows_classifier(classify, n_images)

    def round_fn(xs, state: IterState, lane_image, target, threshold):
        spatial = xs.shape[1:-1]
        plan = jax.vmap(lambda st: _plan(st, cfg))(state)
        lanes, cap = plan.evaluated.shape[:2]
        shape = (lanes, cap, cfg.max_active, N_PLAN)
        m = int(np.prod(shape))
        valid = jnp.concatenate(
            [jnp.broadcast_to(plan.evaluated[..., None], shape[:-1] + (N_MUTANTS,)), plan.ask_empty[..., None]], axis=-1
        ).reshape(m)
        rects = plan.rects.reshape(m, -1, 2 * len(spatial))
        rect_valid = plan.rect_valid.reshape(m, -1)
        static = state.static.reshape((lanes * cap,) + spatial)
        job_of = jnp.arange(m) // (cfg.max_active * N_PLAN)
        lane_of = job_of // cap
        row_target = target[lane_of]

        def evaluate(idx):
            drawn = jax.vmap(lambda r, v: render(r, v, *spatial))(rects[idx], rect_valid[idx])
            return rows(xs, lane_image[lane_of[idx]], static[job_of[idx]] | drawn)

        def read(probs, idx):
            t = row_target[idx]
            return jnp.argmax(probs, -1).astype(jnp.int32), jnp.take_along_axis(probs, t[:, None], 1)[:, 0]

        init = (jnp.full((m,), -1, jnp.int32), jnp.zeros((m,), jnp.float32))
        out = push(evaluate, m, batch_size=batch_size, read=read, init=init, valid=valid)
        top1, conf = out.values
        new = jax.vmap(lambda st, p, t, c, tg, th: _update(st, p, t, c, tg, th, cfg))(
            state, plan, top1.reshape(shape), conf.reshape(shape), target, threshold
        )
        return new, out.forward_images.reshape(1)

    if mesh is None:
        return jax.jit(lambda *a: (lambda st, f: (st, f[0]))(*round_fn(*a)))
    spec = jax.sharding.PartitionSpec(mesh.axis_names[0])
    return jax.jit(jax.shard_map(round_fn, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False))


def image_mesh(devices=None):
    """A 1-D mesh (axis "images") over `devices` (default: every local device)."""
    devices = jax.local_devices() if devices is None else list(devices)
    return jax.sharding.Mesh(np.asarray(devices), ("images",))


def make_search(classify: Callable, cfg: SearchConfig, batch_size: int) -> Callable:
    """Returns `search(key, x, target, full_confidence, progress=False, full_passes=True) -> SearchResult`.

    Iteration `p` (1-based) uses `keys.iteration(key, p)`, mirroring the reference's `seed + p`.
    `full_passes`: whether the full image passes (top-1 = target); the root's full subset.
    Compiles once per image shape; reuse the returned function across images. It is
    `make_lockstep_search` on one image.
    """
    many = make_lockstep_search(classify, cfg, batch_size)

    def search(key, x, target, full_confidence, progress: bool = False, full_passes: bool = True) -> SearchResult:
        return many([key], jnp.asarray(x)[None], [target], [full_confidence], [full_passes], progress=progress)[0]

    return search


def make_lockstep_search(classify: Callable, cfg: SearchConfig, batch_size: int, mesh=None) -> Callable:
    """Returns `search(keys, xs, targets, full_confidences, full_passes, progress=False) -> list[SearchResult]`.

    Several images in lockstep: lane (i, p) is iteration p of image i,
    keyed `keys.iteration(keys[i], p)` exactly as a search of image i alone, and all lanes of all
    images advance together, their mutants compacted into shared batches of `batch_size`.
    Lanes never interact, so each image's maps, depths and mutant counts are those of its
    own search; `forward_images` (rows pushed, padding included) is shared and split between
    the images in proportion to their mutants (the first image takes the remainder), so it
    sums to the rows pushed. `mesh` (`image_mesh()`): the images are split into equal blocks
    over the mesh's devices, padded with idle lanes to a multiple of the
    device count; each device runs its block in lockstep. Compiles once per (image count,
    image shape).
    """
    max_rounds = cfg.tree_depth + 2  # depth grows by one each round; +1 to observe `done`
    dtype = jnp.int32 if cfg.exact else jnp.float32
    devices = 1 if mesh is None else mesh.devices.size
    rounds_by_count: dict = {}

    def search(keys, xs, targets, full_confidences, full_passes, progress: bool = False) -> list:
        xs = jnp.asarray(xs)
        n = xs.shape[0]
        shape = tuple(xs.shape[1:-1])
        padded = -(-n // devices) * devices
        per_device = padded // devices
        if padded not in rounds_by_count:
            rounds_by_count[padded] = make_round(classify, cfg, batch_size, per_device, mesh)
        round_fn = rounds_by_count[padded]
        pad = lambda v, fill: np.concatenate([v, np.full((padded - n,) + v.shape[1:], fill, v.dtype)])  # idle images
        xs = jnp.concatenate([xs, jnp.zeros((padded - n,) + xs.shape[1:], xs.dtype)]) if padded > n else xs
        keys = [checks.key(k) for k in keys]
        iteration = jnp.arange(1, cfg.iters + 1)
        lane_keys = jnp.concatenate(
            [jax.vmap(lambda p: iteration_key(k, p))(iteration) for k in keys + keys[:1] * (padded - n)]
        )
        lanes = padded * cfg.iters
        passes = jnp.asarray(np.repeat(pad(np.asarray(full_passes, bool), True), cfg.iters))
        state = jax.vmap(
            lambda k, f: init_state(k, shape, cfg.queue_capacity, cfg.max_active, dtype, f)
        )(lane_keys, passes)
        idle = np.repeat(np.arange(padded) >= n, cfg.iters)
        state = state._replace(done=jnp.asarray(idle), job_valid=state.job_valid & ~jnp.asarray(idle)[:, None])
        lane_image = jnp.asarray(np.repeat(np.arange(padded) % per_device, cfg.iters), jnp.int32)
        target = jnp.asarray(np.repeat(pad(np.asarray(targets, np.int32), 0), cfg.iters))
        conf = [np.float32(cfg.confidence_filter * float(c)) for c in full_confidences]
        threshold = jnp.asarray(np.repeat(pad(np.asarray(conf, np.float32), 0.0), cfg.iters))
        forward = []
        rounds = 0
        bar = tqdm(total=max_rounds, desc="ReX rounds", leave=False, disable=not progress)
        for rounds in range(1, max_rounds + 1):
            state, pushed = round_fn(xs, state, lane_image, target, threshold)
            forward.append(pushed)
            bar.update(1)
            if bool(state.done.all()):
                break
        bar.close()
        state = jax.tree_util.tree_map(  # keys dropped: they cannot become numpy arrays
            lambda v: np.asarray(v)[: n * cfg.iters].reshape((n, cfg.iters) + v.shape[1:]), state._replace(key=None)
        )
        mutants = state.mutants.sum(axis=1)
        total = int(sum(int(np.asarray(f).sum()) for f in forward))
        share = (total - int(mutants.sum())) * mutants // max(int(mutants.sum()), 1)
        share[0] += total - int(mutants.sum()) - int(share.sum())
        return [_result(cfg, jax.tree_util.tree_map(lambda v: v[i], state), int(mutants[i] + share[i]), rounds, shape)
                for i in range(n)]

    return search


def combine_iterations(per_iteration: np.ndarray, keep: np.ndarray, combine: str) -> np.ndarray:
    """The map f32[*S] from the iterations' maps `per_iteration` f32[iters, *S] and `keep`
    bool[iters]. "sum": the kept maps added in order (equal per-iteration values give equal
    sums). "product" (rex-xai 0.4.1's default, `ResponsibilityMaps.merge` in its
    multiplicative style): m <- m * (1 + r_i) / max(m * (1 + r_i)) over the kept i, from
    m = 1; all zero when none is kept.
    """
    checks.one_of("combine", combine, COMBINES)
    kept = np.flatnonzero(keep)
    if combine == "sum" or not kept.size:
        total = np.zeros(per_iteration.shape[1:], np.float32)
        for i in kept:
            total += per_iteration[i]
        return total
    total = np.ones(per_iteration.shape[1:], np.float32)
    for i in kept:
        total *= 1.0 + per_iteration[i]
        total /= total.max()
    return total


def _result(cfg: SearchConfig, state: IterState, forward_images: int, rounds: int, shape: tuple) -> SearchResult:
    """One image's SearchResult from its lanes' final states (numpy, leading `iters` axis)."""
    depth = state.depth_reached
    keep = depth > 1 if cfg.discard_shallow else np.ones_like(depth, bool)
    raw = state.resp
    if cfg.exact:
        per_iteration, unit_maps, resolution = (raw / RESOLUTION).astype(np.float32), raw, RESOLUTION
    else:
        per_iteration, unit_maps, resolution = raw, None, 1
    if cfg.exact and cfg.combine == "sum":  # exact integer sum; equal units give equal floats
        responsibility = (raw[keep].sum(axis=0, dtype=np.int64) / RESOLUTION).astype(np.float32)
    else:
        responsibility = combine_iterations(per_iteration, keep, cfg.combine)
    return SearchResult(
        responsibility=responsibility,
        per_iteration=per_iteration,
        units=unit_maps,
        resolution=resolution,
        depth_reached=depth,
        kept=keep,
        forward_images=forward_images,
        mutants=int(state.mutants.sum()),
        iteration_mutants=state.mutants,
        rounds=rounds,
    )
