"""Layer-wise Relevance Propagation (Bach et al. 2015) as a modified gradient over the jaxpr.

With output relevance R_out = f_t (the target logit), LRP through linear maps z = W a and
ReLU-like gates is `R_in = a * g`, where g is the gradient of f_t except that at every linear
primitive (`conv_general_dilated`, `dot_general`) the backward pass uses the rule:

    epsilon:  g_a = W^T (g * z / (z + eps sign z))                          (LRP-eps)
    gamma:    g_a = (W + gamma W+)^T (g * z / (z_gamma + eps sign z_gamma)),
              z_gamma = (W + gamma W+) a          (LRP-gamma; convolutions only, gamma -> inf = z+)

`lrp()` traces `classifier.logits` to a jaxpr and walks it (`rexjax.jaxpr.eval_jaxpr`) with
those custom VJPs as overrides; all other primitives keep their gradients (ReLU passes
relevance where it is active). z is the output of the linear primitive itself: biases are
separate `add`s, so they neither absorb nor receive relevance, and eps = 0 on a bias-free
ReLU network gives exactly gradient x input.
The map sums relevance over channels; the record (`ChannelAttributions`) holds the
per-channel relevance f32[H, W, C]. forward_images = 1.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from rexjax import checks
from rexjax.jaxpr import eval_jaxpr
from rexjax.saliency.gradients import ChannelAttributions
from rexjax.types import Attribution

LINEAR = ("conv_general_dilated", "dot_general")


def _stabilise(z, eps):
    return z + eps * jnp.where(z >= 0, 1.0, -1.0)


def _linear_rule(eqn, eps: float, gamma: float):
    """A function (a, w) -> z with the LRP backward pass for one linear equation."""
    params = eqn.primitive.get_bind_params(eqn.params)

    def apply(a, w):
        with eqn.ctx.manager:
            return eqn.primitive.bind(a, w, **params)

    use_gamma = gamma > 0 and eqn.primitive.name == "conv_general_dilated"

    @jax.custom_vjp
    def f(a, w):
        return apply(a, w)

    def fwd(a, w):
        return apply(a, w), (a, w)

    def bwd(res, g):
        a, w = res
        wr = w + gamma * jnp.maximum(w, 0) if use_gamma else w
        zr, vjp = jax.vjp(lambda aa: apply(aa, wr), a)
        z = apply(a, w)
        s = g * z / _stabilise(zr, eps) if (use_gamma or eps > 0) else g
        if use_gamma or eps > 0:
            s = jnp.where(zr == 0, 0.0, s)
        return vjp(s)[0], jnp.zeros_like(w)

    f.defvjp(fwd, bwd)
    return f


def lrp_overrides(eps: float, gamma: float) -> dict:
    """Walker overrides (`rexjax.jaxpr.eval_jaxpr`): every two-operand linear equation gets
    the LRP backward pass of `_linear_rule`; everything else keeps its gradient."""

    def linear(eqn, invals):
        if len(invals) != 2:
            return None
        return [_linear_rule(eqn, eps, gamma)(*invals)]

    return {name: linear for name in LINEAR}


def lrp_logits(logits_fn, eps: float = 1e-6, gamma: float = 0.0):
    """x[B,H,W,C] -> logits with LRP backward rules (forward values unchanged)."""
    overrides = lrp_overrides(eps, gamma)

    def f(xb):
        closed = jax.make_jaxpr(logits_fn)(xb)
        return eval_jaxpr(closed.jaxpr, closed.consts, [xb], overrides)[0]

    return f


def lrp(eps: float = 1e-6, gamma: float = 0.0):
    """LRP factory: eps for every linear layer, gamma (> 0) for convolutions.

    Returns `fn(classifier, x, target, *, key) -> Attribution(map f32[H, W], 1,
    ChannelAttributions(relevance f32[H, W, C]))` (key unused; the relevance of
    `classifier.logits`).
    """
    eps = checks.in_range("eps", eps, 0.0, float("inf"))
    gamma = checks.in_range("gamma", gamma, 0.0, float("inf"))

    @functools.partial(jax.jit, static_argnums=0)
    def relevance(classifier, x, target):
        f = lrp_logits(classifier.logits, eps, gamma)
        g = jax.grad(lambda z: f(z[None])[0, target])(x)
        return x * g

    def explain(classifier, x, target, *, key) -> Attribution:
        del key
        classifier.require_gradients("lrp")
        x, t = classifier.check(x, target)
        r = relevance(classifier, x, t)
        return Attribution(r.sum(-1), 1, ChannelAttributions(r))

    return explain
