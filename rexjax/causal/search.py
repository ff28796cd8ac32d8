"""Responsibility search: refinement rounds and iterations, all iterations in lockstep.

ReX paper Alg. 2-3; reference behaviour Sec. 4. Each iteration (one random partition
lineage, Alg. 3's N) holds a queue of `Q` jobs. A job is a set of up to 3 *active* boxes
(split in this round, one at a time) plus a *static* visible region (boxes held at their
original values while another box is refined, paper Sec. 5.2). Splitting active box `a`
of job `q` gives 4 children and 14 mutants: visible = static | other active boxes | the
subset of children. Passing mutants (top-1 = target, confidence >= filter x full) credit
responsibility to their children; the `Q` smallest passing mutants of the round become the
next jobs, their children active and everything else they showed static.

One round = one jitted call for all `iters` iterations: the round's mutants are laid out
with fixed shape `[iters, Q, 3, 14]`, compacted on device to the valid ones, and pushed
through the model in chunks of `batch_size` inside a `lax.while_loop`; masks are rendered
from rectangles on device (`rexjax.batching.push`). The host only checks between rounds whether all are done.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from rexjax.batching import push
from rexjax.causal.config import RexConfig
from rexjax.causal.partition import N_MUTANTS, SUBSETS, box_area, paint, render, split_box
from rexjax.causal.responsibility import child_responsibility



class IterState(NamedTuple):
    """State of one iteration (a leading `iters` axis when batched)."""

    key: jax.Array  # PRNG key of the iteration
    static: jax.Array  # bool[Q, H, W] region each job shows but does not refine
    active: jax.Array  # int32[Q, A, 4] boxes each job refines (A = max_active)
    active_valid: jax.Array  # bool[Q, A]
    depth: jax.Array  # int32[Q] tree depth of the active boxes (root 0)
    job_valid: jax.Array  # bool[Q]
    resp: jax.Array  # f32[H, W] this iteration's responsibility
    depth_reached: jax.Array  # int32, deepest children queued
    work: jax.Array  # int32, mutants evaluated
    done: jax.Array  # bool


class SearchResult(NamedTuple):
    responsibility: np.ndarray  # f32[H, W], sum over kept iterations
    per_iteration: np.ndarray  # f32[iters, H, W]
    depth_reached: np.ndarray  # int32[iters]
    forward_images: int
    rounds: int


def init_state(key: jax.Array, height: int, width: int, capacity: int, max_active: int) -> IterState:
    """One job per iteration: the root box, nothing static."""
    active = jnp.zeros((capacity, max_active, 4), jnp.int32).at[0, 0].set(
        jnp.array([0, 0, height, width], jnp.int32)
    )
    return IterState(
        key=key,
        static=jnp.zeros((capacity, height, width), bool),
        active=active,
        active_valid=jnp.zeros((capacity, max_active), bool).at[0, 0].set(True),
        depth=jnp.zeros((capacity,), jnp.int32),
        job_valid=jnp.zeros((capacity,), bool).at[0].set(True),
        resp=jnp.zeros((height, width), jnp.float32),
        depth_reached=jnp.zeros((), jnp.int32),
        work=jnp.zeros((), jnp.int32),
        done=jnp.zeros((), bool),
    )


class _Plan(NamedTuple):
    children: jax.Array  # int32[Q, A, 4, 4]
    evaluated: jax.Array  # bool[Q, A]
    rects: jax.Array  # int32[Q, A, 14, 4 + A, 4] visible rectangles of each mutant (+ static)
    rect_valid: jax.Array  # bool[Q, A, 14, 4 + A]
    others_valid: jax.Array  # bool[Q, A, A] the other active boxes of the job
    area: jax.Array  # int32[Q, A, 14] visible pixels of each mutant


def _plan(st: IterState, cfg: RexConfig) -> _Plan:
    """Splits every active box of every job; lays out the 14 mutants of each split."""
    split = lambda box, depth: split_box(
        st.key,
        box,
        depth,
        min_box_size=cfg.min_box_size,
        tree_depth=cfg.tree_depth,
        distribution=cfg.distribution,
        distribution_args=cfg.distribution_args,
    )
    q, a = st.active.shape[:2]
    depth = jnp.broadcast_to(st.depth[:, None], (q, a))
    children, splittable = jax.vmap(jax.vmap(split))(st.active, depth)
    evaluated = st.job_valid[:, None] & st.active_valid & splittable & ~st.done
    others_valid = st.active_valid[:, None, :] & ~jnp.eye(a, dtype=bool)[None]
    rects = jnp.concatenate(
        [
            jnp.broadcast_to(children[:, :, None], (q, a, N_MUTANTS, 4, 4)),
            jnp.broadcast_to(st.active[:, None, None], (q, a, N_MUTANTS, a, 4)),
        ],
        axis=3,
    )
    rect_valid = jnp.concatenate(
        [
            jnp.broadcast_to(jnp.asarray(SUBSETS), (q, a, N_MUTANTS, 4)),
            jnp.broadcast_to(others_valid[:, :, None], (q, a, N_MUTANTS, a)),
        ],
        axis=3,
    )
    static_area = st.static.sum(axis=(1, 2), dtype=jnp.int32)
    area = static_area[:, None, None] + (box_area(rects) * rect_valid).sum(-1)
    return _Plan(children, evaluated, rects, rect_valid, others_valid, area)


def _update(st: IterState, plan: _Plan, top1, conf, target, threshold, cfg: RexConfig) -> IterState:
    """Credits responsibility and builds the next queue of one iteration."""
    n_active = plan.evaluated.shape[1]
    h, w = st.resp.shape
    passes = plan.evaluated[..., None] & (top1 == target) & (conf >= threshold)
    inc = jax.vmap(jax.vmap(lambda p, c: child_responsibility(p, c, cfg.responsibility)))(passes, conf)
    inc = jnp.where(plan.evaluated[..., None], inc, 0.0)
    resp = paint(st.resp, plan.children.reshape(-1, 4), inc.reshape(-1))

    # Next queue: the Q smallest passing mutants of the whole round (stable: ties keep
    # job, box and combination order).
    cap = st.job_valid.shape[0]
    key_area = jnp.where(passes, plan.area, jnp.iinfo(jnp.int32).max).reshape(-1)
    pick = jnp.argsort(key_area, stable=True)[:cap]
    ok = passes.reshape(-1)[pick]
    pq, pa, ps = jnp.unravel_index(pick, passes.shape)
    subsets = jnp.asarray(SUBSETS)[ps]  # [cap, 4]
    order = jnp.argsort(~subsets, axis=1, stable=True)[:, :3]
    kids = jnp.take_along_axis(plan.children[pq, pa], order[..., None], axis=1)  # [cap, 3, 4]
    kids_valid = jnp.take_along_axis(subsets, order, axis=1)
    held, held_valid = st.active[pq], plan.others_valid[pq, pa]  # shown while `a` was split
    if cfg.refine_static:
        # Paper Sec. 5.2: boxes held at their values while another box was refined are
        # refined in turn next round: children first, then held boxes, `max_active` at most;
        # the overflow stays visible as static region.
        boxes = jnp.concatenate([kids, held], axis=1)
        valid = jnp.concatenate([kids_valid, held_valid], axis=1)
    else:  # pad to `max_active` slots so the state keeps its shape
        boxes = jnp.concatenate([kids, jnp.zeros_like(held[:, 3:])], axis=1)
        valid = jnp.concatenate([kids_valid, jnp.zeros_like(held_valid[:, 3:])], axis=1)
    keep = jnp.argsort(~valid, axis=1, stable=True)
    boxes = jnp.take_along_axis(boxes, keep[..., None], axis=1)
    valid = jnp.take_along_axis(valid, keep, axis=1)
    if cfg.refine_static:
        to_static, to_static_valid = boxes[:, n_active:], valid[:, n_active:]
    else:
        to_static, to_static_valid = held, held_valid
    static = st.static[pq] | jax.vmap(lambda r, v: render(r, v, h, w))(to_static, to_static_valid)
    new_active, new_valid = boxes[:, :n_active], valid[:, :n_active]
    new_depth = st.depth[pq] + 1
    depth_reached = jnp.maximum(st.depth_reached, jnp.max(jnp.where(ok, new_depth, 0)))
    work = st.work + N_MUTANTS * plan.evaluated.sum(dtype=jnp.int32)
    done = st.done | ~ok.any()
    if cfg.search_limit is not None:
        done = done | (work > cfg.search_limit)
    return IterState(
        key=st.key,
        static=static,
        active=new_active,
        active_valid=new_valid,
        depth=new_depth,
        job_valid=ok,
        resp=resp,
        depth_reached=depth_reached,
        work=work,
        done=done,
    )


def make_round(classify: Callable, cfg: RexConfig) -> Callable:
    """Returns jitted `round(x, state, target, threshold) -> (state, forward_images)`.

    `classify` is a MaskedClassifier `(x[H,W,C], masks[B,H,W]) -> probs[B,K]`; `state` an
    IterState with a leading `iters` axis; `threshold` the absolute confidence a passing
    mutant needs. The round's valid mutants go through `batching.push` (compacted).
    """
    cfg = cfg.resolved()

    def round_fn(x, state: IterState, target, threshold):
        h, w = x.shape[:2]
        plan = jax.vmap(lambda st: _plan(st, cfg))(state)
        iters, cap = plan.evaluated.shape[:2]
        shape = (iters, cap, cfg.max_active, N_MUTANTS)
        m = int(np.prod(shape))
        valid = jnp.broadcast_to(plan.evaluated[..., None], shape).reshape(m)
        rects = plan.rects.reshape(m, -1, 4)
        rect_valid = plan.rect_valid.reshape(m, -1)
        static = state.static.reshape(iters * cap, h, w)
        job_of = jnp.arange(m) // (cfg.max_active * N_MUTANTS)

        def evaluate(idx):
            drawn = jax.vmap(lambda r, v: render(r, v, h, w))(rects[idx], rect_valid[idx])
            return classify(x, static[job_of[idx]] | drawn)

        def read(probs, idx):
            return jnp.argmax(probs, -1).astype(jnp.int32), probs[:, target]

        init = (jnp.full((m,), -1, jnp.int32), jnp.zeros((m,), jnp.float32))
        out = push(evaluate, m, batch_size=cfg.batch_size, read=read, init=init, valid=valid)
        top1, conf = out.values
        new = jax.vmap(lambda st, p, t, c: _update(st, p, t, c, target, threshold, cfg))(
            state, plan, top1.reshape(shape), conf.reshape(shape)
        )
        return new, out.forward_images

    return jax.jit(round_fn)


def make_search(classify: Callable, cfg: RexConfig) -> Callable:
    """Returns `search(key, x, target, full_confidence, progress=False) -> SearchResult`.

    Iteration `p` (1-based) uses `fold_in(key, p)`, mirroring the reference's `seed + p`.
    Compiles once per image shape; reuse the returned function across images.
    """
    cfg = cfg.resolved()
    round_fn = make_round(classify, cfg)
    max_rounds = cfg.tree_depth + 2  # depth grows by one each round; +1 to observe `done`

    def search(key, x, target, full_confidence, progress: bool = False) -> SearchResult:
        h, w = x.shape[:2]
        keys = jax.vmap(lambda p: jax.random.fold_in(key, p))(jnp.arange(1, cfg.iters + 1))
        state = jax.vmap(lambda k: init_state(k, h, w, cfg.queue_capacity, cfg.max_active))(keys)
        threshold = jnp.float32(cfg.confidence_filter * full_confidence)
        target = jnp.int32(target)
        forward = []
        rounds = 0
        bar = tqdm(total=max_rounds, desc="ReX rounds", leave=False, disable=not progress)
        for rounds in range(1, max_rounds + 1):
            state, n = round_fn(x, state, target, threshold)
            forward.append(n)
            bar.update(1)
            if bool(state.done.all()):
                break
        bar.close()
        keep = state.depth_reached > 1 if cfg.discard_shallow else jnp.ones_like(state.done)
        total = jnp.where(keep[:, None, None], state.resp, 0.0).sum(axis=0)
        return SearchResult(
            responsibility=np.asarray(total),
            per_iteration=np.asarray(state.resp),
            depth_reached=np.asarray(state.depth_reached),
            forward_images=int(sum(int(n) for n in forward)),
            rounds=rounds,
        )

    return search
