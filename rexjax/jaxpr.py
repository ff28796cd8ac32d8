"""One generic jaxpr walker, shared by ConvAD (`rexjax.ad`) and LRP (`rexjax.saliency.lrp`).

    outs = eval_jaxpr(jaxpr, consts, args, overrides, lift=...)

walks `jaxpr.eqns` in order, like `jax.core.eval_jaxpr`, with two additions:

* `overrides` replaces the evaluation of chosen equations. Either a mapping
  `primitive name -> rule` or a single callable `rule`, where

      rule(eqn: JaxprEqn, invals: list[Entry]) -> list[Entry] | None

  receives the entries of `eqn.invars` (one per input, in order) and returns one entry per
  `eqn.outvars` (a list even for a single output), or None to leave the equation to the
  walker (see below).
* Env entries are whatever the caller carries: plain arrays by default, or e.g. ConvAD's
  `(value, mask)` pairs. `lift(value) -> Entry` turns the plain constants the walker meets
  (literals, and the constants of nested closed jaxprs) into entries; `consts` are plain
  values, lifted too; `args` are entries already.

An equation no override takes is evaluated by the walker: a call-like equation
(`CALL_PRIMITIVES`: jit/pjit, closed_call, custom_jvp_call, custom_vjp_call, checkpoint/remat)
is walked into recursively with the same `overrides` and `lift` (so overrides reach inside
jitted functions; custom JVP/VJP rules are dropped, the body's own derivative is used);
anything else is bound as is (`bind`), which needs plain-array entries. A caller whose
entries are not plain arrays therefore takes every non-call equation in its override.

The walker knows nothing about what it carries (masks, relevance, ...).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

from jax.extend import core as jcore

Entry = Any
Rule = Callable[[Any, list], Optional[list]]
Overrides = Union[Mapping[str, Rule], Rule, None]

CALL_PRIMITIVES = frozenset(
    {
        "jit",
        "pjit",
        "closed_call",
        "core_call",
        "custom_jvp_call",
        "custom_vjp_call",
        "custom_vjp_call_jaxpr",
        "checkpoint",
        "remat",
        "remat2",
    }
)
_SUB_JAXPR_PARAMS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def bind(eqn, invals: Sequence[Any]) -> list:
    """Evaluates `eqn` on plain values, exactly as `jax.core.eval_jaxpr` does; a list of outputs."""
    params = eqn.primitive.get_bind_params(eqn.params)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


def sub_jaxpr(eqn) -> Optional[jcore.ClosedJaxpr]:
    """The body of a call-like equation (`CALL_PRIMITIVES`) as a ClosedJaxpr, else None."""
    if eqn.primitive.name not in CALL_PRIMITIVES:
        return None
    for name in _SUB_JAXPR_PARAMS:
        sub = eqn.params.get(name)
        if sub is not None:
            return sub if isinstance(sub, jcore.ClosedJaxpr) else jcore.ClosedJaxpr(sub, ())
    return None


def _identity(v):
    return v


def _rule_lookup(overrides: Overrides) -> Callable[[Any], Optional[Rule]]:
    """eqn -> the rule that may take it (or None), for each form of `overrides`."""
    if overrides is None:
        return lambda eqn: None
    if isinstance(overrides, Mapping):
        return lambda eqn: overrides.get(eqn.primitive.name)
    if callable(overrides):
        return lambda eqn: overrides
    raise ValueError(f"overrides must be None, a mapping name -> rule or a callable, got {overrides!r}")


def eval_jaxpr(
    jaxpr: jcore.Jaxpr,
    consts: Sequence[Any],
    args: Sequence[Entry],
    overrides: Overrides = None,
    *,
    lift: Callable[[Any], Entry] = _identity,
) -> list:
    """Evaluates `jaxpr` on `args`; returns the entries of `jaxpr.outvars` (see module doc).

    jaxpr: an open `Jaxpr` (`closed.jaxpr`); consts: plain values for `jaxpr.constvars`
    (`closed.consts`); args: one entry per `jaxpr.invars`; overrides: a mapping
    primitive name -> rule or one rule `(eqn, invals) -> outs | None`; lift: plain value ->
    entry (identity by default).
    """
    if len(consts) != len(jaxpr.constvars) or len(args) != len(jaxpr.invars):
        raise ValueError(
            f"jaxpr takes {len(jaxpr.constvars)} consts and {len(jaxpr.invars)} args, "
            f"got {len(consts)} and {len(args)}"
        )
    rule_for = _rule_lookup(overrides)

    env: dict = {}

    def read(v):
        return lift(v.val) if isinstance(v, jcore.Literal) else env[v]

    for var, c in zip(jaxpr.constvars, consts):
        env[var] = lift(c)
    for var, a in zip(jaxpr.invars, args):
        env[var] = a
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        rule = rule_for(eqn)
        outs = rule(eqn, invals) if rule is not None else None
        if outs is None:
            sub = sub_jaxpr(eqn)
            if sub is not None:
                outs = eval_jaxpr(sub.jaxpr, sub.consts, invals, overrides, lift=lift)
            else:
                outs = bind(eqn, invals)
        if len(outs) != len(eqn.outvars):
            raise ValueError(f"{eqn.primitive.name}: got {len(outs)} outputs for {len(eqn.outvars)} outvars")
        for var, o in zip(eqn.outvars, outs):
            env[var] = o
    return [read(v) for v in jaxpr.outvars]
