"""ConvAD rules for position-wise primitives: activations, BN/affine with broadcast
constants, squeeze-excitation gating, residual adds (rule signature: `ad/mask.py`)."""

from __future__ import annotations

from rexjax.ad.mask import pointwise
from rexjax.jaxpr import bind

UNARY = (
    "neg sign floor ceil round is_finite exp exp2 log log1p expm1 tanh logistic sin cos tan "
    "asin acos atan sinh cosh asinh acosh atanh sqrt rsqrt cbrt abs not erf erfc erf_inv "
    "lgamma digamma integer_pow square convert_element_type reduce_precision copy copy_p "
    "real imag conj population_count clz sharding_constraint stop_gradient"
).split()
BINARY = (
    "add sub mul div rem pow max min atan2 nextafter and or xor eq ne lt le gt ge "
    "shift_left shift_right_logical shift_right_arithmetic add_any"
).split()
NARY = ["select_n", "clamp"]
PRIMITIVES = UNARY + BINARY + NARY  # all taken by `elementwise`
ADDITIVE = {"add", "sub", "add_any"}


def elementwise(ctx, eqn, vals, masks):
    """Activations, BN/affine with broadcast constants, SE gating, residual adds.

    Shape-preserving and position-wise, so the mask passes through (paper case 1: no
    checkpoint needed until the next position-mixing op). Operands with different masks
    are combined by `mask.combine` (additive for add/sub, AND otherwise).
    """
    return pointwise(ctx, eqn, vals, masks, eqn.primitive.name in ADDITIVE)


def passthrough_each(ctx, eqn, vals, masks):
    """Multi-operand identities (optimization_barrier): each output keeps its mask."""
    return bind(eqn, vals), list(masks)

