"""ConvAD: Activation-Deactivation (Chanchal, Kelly, Chockler 2025) for any JAX CNN.

`convad(apply_fn, tau=0.0)` -> `f(variables, x[B,H,W,C], mask[B,H,W]) -> logits`: the mask
(1 = visible) travels through the network beside the activations, and activations of
masked regions are switched off at checkpoints, so masked pixels never reach the logits.
"""

from rexjax.ad.interpreter import Mask, Options, UnsupportedPrimitiveError, convad

__all__ = ["convad", "Mask", "Options", "UnsupportedPrimitiveError"]
