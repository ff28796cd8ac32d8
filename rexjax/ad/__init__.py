"""ConvAD: Activation-Deactivation (Chanchal, Kelly, Chockler 2025) for any JAX CNN.

`convad(apply_fn, tau=0.0)` -> `f(variables, x[B,H,W,C], mask[B,H,W]) -> logits`: the mask
(1 = visible) travels through the network beside the activations, and activations of
masked regions are switched off at checkpoints, so masked pixels never reach the logits.
The mask is binary (`> 0` is visible). `convad(..., poison=True)` is the leak check used by
the tests: masked intermediates hold NaN, and the output must not change.

Modules: `mask.py` (Mask, Options, deactivate, errors, helpers shared by the rules),
`rules_elementwise.py` / `rules_shape.py` / `rules_conv.py` / `rules_reduce.py` (one small
function per primitive family), `interpreter.py` (`convad` and the rule table
`PRIMITIVE_RULES`, on the generic walker `rexjax.jaxpr.eval_jaxpr`).
"""

from rexjax.ad.interpreter import PRIMITIVE_RULES, convad
from rexjax.ad.mask import Mask, Options, UnsupportedPrimitiveError

__all__ = ["convad", "Mask", "Options", "UnsupportedPrimitiveError", "PRIMITIVE_RULES"]
