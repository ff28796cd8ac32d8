"""Layer-wise Relevance Propagation (Bach et al. 2015) as a modified gradient over the jaxpr.

With output relevance R_out = f_t (the target logit), LRP through linear maps z = W a and
ReLU-like gates is `R_in = a * g`, where g is the gradient of f_t except that at every linear
primitive (`conv_general_dilated`, `dot_general`) the backward pass uses the rule:

    epsilon:  g_a = W^T (g * z / (z + eps sign z))                          (LRP-eps)
    gamma:    g_a = (W + gamma W+)^T (g * z / (z_gamma + eps sign z_gamma)),
              z_gamma = (W + gamma W+) a          (LRP-gamma; convolutions only, gamma -> inf = z+)

`lrp(logits_fn)` traces the model to a jaxpr and evaluates it with those custom VJPs; all
other primitives keep their gradients (ReLU passes relevance where it is active). z is the
output of the linear primitive itself: biases are separate `add`s, so they neither absorb
nor receive relevance, and eps = 0 on a bias-free ReLU network gives exactly gradient x input.
The map sums relevance over channels. forward_images = 1.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from rexjax.ad.interpreter import bind
from rexjax.saliency._common import Saliency, check_image, check_target, num_classes_logits

LINEAR = ("conv_general_dilated", "dot_general")
CALLS = (
    "pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr",
    "remat", "checkpoint",
)


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


def _eval(jaxpr, consts, args, eps, gamma):
    env = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        sub = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr", eqn.params.get("fun_jaxpr")))
        if name in CALLS and sub is not None:
            closed = sub if hasattr(sub, "consts") else jcore.ClosedJaxpr(sub, ())
            outs = _eval(closed.jaxpr, closed.consts, invals, eps, gamma)
        elif name in LINEAR and len(invals) == 2:
            outs = [_linear_rule(eqn, eps, gamma)(*invals)]
        else:
            outs = bind(eqn, invals)
        for v, o in zip(eqn.outvars, outs):
            env[v] = o
    return [read(v) for v in jaxpr.outvars]


def lrp_logits(logits_fn, eps: float = 1e-6, gamma: float = 0.0):
    """x[B,H,W,C] -> logits with LRP backward rules (forward values unchanged)."""

    def f(xb):
        closed = jax.make_jaxpr(logits_fn)(xb)
        return _eval(closed.jaxpr, closed.consts, [xb], eps, gamma)[0]

    return f


def lrp(eps: float = 1e-6, gamma: float = 0.0):
    """LRP factory: eps for every linear layer, gamma (> 0) for convolutions.

    Returns `(key, logits_fn, x, target) -> Saliency` (key unused); `.attribute` gives the
    per-channel relevance f32[H, W, C].
    """
    if not eps >= 0 or not gamma >= 0:
        raise ValueError(f"eps and gamma must be >= 0, got {eps!r}, {gamma!r}")

    @functools.partial(jax.jit, static_argnums=0)
    def relevance(logits_fn, x, target):
        f = lrp_logits(logits_fn, eps, gamma)
        g = jax.grad(lambda z: f(z[None])[0, target])(x)
        return x * g

    def attribute(key, logits_fn, x, target):
        del key
        x = check_image(x)
        t = check_target(target, num_classes_logits(logits_fn, x))
        return relevance(logits_fn, x, t)

    def explain(key, logits_fn, x, target) -> Saliency:
        return Saliency(attribute(key, logits_fn, x, target).sum(-1), 1)

    explain.attribute = attribute
    return explain
