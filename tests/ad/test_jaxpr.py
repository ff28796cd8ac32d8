"""The generic jaxpr walker `rexjax.jaxpr.eval_jaxpr` on its own (ConvAD and LRP build on it)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import jaxpr as walker

C = jnp.arange(1.0, 7.0).reshape(2, 3)  # a closed-over constant


@jax.jit
def inner(a):
    return jnp.sin(a) * 2.0 + C


def f(x, y):
    """Nested jit (pjit inside pjit), a custom_jvp (relu), literals, a constant, two outputs."""
    h = jax.jit(lambda z: inner(z) + jnp.cos(y))(x)
    return jax.nn.relu(h - 3.0) @ jnp.ones((3, 2)), jnp.exp(x).sum()


X = jax.random.normal(jax.random.key(0), (2, 3))
Y = jax.random.normal(jax.random.key(1), (2, 3))


def closed():
    return jax.make_jaxpr(f)(X, Y)


def test_plain_walk_equals_jax_eval_jaxpr_and_the_function():
    cj = closed()
    names = {e.primitive.name for e in cj.jaxpr.eqns}
    assert {"jit", "pjit"} & names, names  # the walk has sub-jaxprs to descend into
    got = walker.eval_jaxpr(cj.jaxpr, cj.consts, [X, Y])
    ref = jax.core.eval_jaxpr(cj.jaxpr, cj.consts, X, Y)
    direct = f(X, Y)
    assert len(got) == 2
    for g, r, d in zip(got, ref, direct):
        np.testing.assert_array_equal(g, r)
        np.testing.assert_allclose(g, d, rtol=1e-6)


def test_override_changes_exactly_the_chosen_primitive():
    """sin -> tanh inside the nested jit; every other equation is evaluated as before."""
    seen = []

    def sin_to_tanh(eqn, invals):
        seen.append(eqn.primitive.name)
        return [jnp.tanh(invals[0])]

    cj = closed()
    got = walker.eval_jaxpr(cj.jaxpr, cj.consts, [X, Y], {"sin": sin_to_tanh})

    def f_tanh(x, y):
        h = jnp.tanh(x) * 2.0 + C + jnp.cos(y)
        return jax.nn.relu(h - 3.0) @ jnp.ones((3, 2)), jnp.exp(x).sum()

    want = f_tanh(X, Y)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    np.testing.assert_array_equal(got[1], f(X, Y)[1])  # the other output is untouched
    assert seen == ["sin"]  # reached inside two levels of jit, once
    assert not np.allclose(got[0], f(X, Y)[0])  # and it did change something


def test_rule_returning_none_falls_back_and_callable_overrides_see_every_equation():
    names = []

    def watch(eqn, invals):
        names.append(eqn.primitive.name)
        return None  # not taken: bound (or descended into) as usual

    cj = closed()
    got = walker.eval_jaxpr(cj.jaxpr, cj.consts, [X, Y], watch)
    np.testing.assert_array_equal(got[0], jax.core.eval_jaxpr(cj.jaxpr, cj.consts, X, Y)[0])
    # the callable sees call-like equations and then the equations of their bodies
    assert names.index("sin") > min(i for i, n in enumerate(names) if n in ("jit", "pjit"))
    assert {"cos", "exp", "dot_general", "custom_jvp_call"} <= set(names)


def test_entries_of_any_kind_with_lift():
    """Entries are (value, depth) pairs: `lift` tags constants/literals with depth 0, the
    override binds values and counts the longest chain of non-call equations."""

    def depth(eqn, entries):
        outs = walker.bind(eqn, [v for v, _ in entries])
        d = 1 + max((k for _, k in entries), default=-1)
        return [(o, d) for o in outs] if walker.sub_jaxpr(eqn) is None else None

    def g(x):
        return jax.jit(lambda z: jnp.sin(z) + 1.0)(x) * C  # sin, add (literal), mul (const)

    cj = jax.make_jaxpr(g)(X)
    ((val, d),) = walker.eval_jaxpr(cj.jaxpr, cj.consts, [(X, 0)], depth, lift=lambda v: (v, 0))
    np.testing.assert_allclose(val, g(X), rtol=1e-6)
    assert d == 3


def test_sub_jaxpr_only_for_call_like_primitives():
    cj = jax.make_jaxpr(lambda x: jax.lax.scan(lambda c, a: (c + a, c), 0.0, x)[0] + jax.jit(jnp.sin)(x).sum())(
        jnp.ones(3)
    )
    subs = {e.primitive.name: walker.sub_jaxpr(e) for e in cj.jaxpr.eqns}
    assert subs["scan"] is None  # has a `jaxpr` param, but is a loop, not a call
    call = subs.get("jit", subs.get("pjit"))
    assert call is not None and [e.primitive.name for e in call.jaxpr.eqns] == ["sin"]


def test_bad_arguments():
    cj = closed()
    with pytest.raises(ValueError, match="2 args"):
        walker.eval_jaxpr(cj.jaxpr, cj.consts, [X])
    with pytest.raises(ValueError, match="overrides"):
        walker.eval_jaxpr(cj.jaxpr, cj.consts, [X, Y], overrides=3)
    with pytest.raises(ValueError, match="outputs"):
        walker.eval_jaxpr(cj.jaxpr, cj.consts, [X, Y], {"sin": lambda eqn, invals: []})
