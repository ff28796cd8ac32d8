"""A tiny CNN whose every model call is counted (rows pushed), for the Method contract test.

`CountingModel(key)` is a Classifier-ready model: `logits(xb)` and `features_and_logits(xb,
delta)` share one core that reports, with `jax.debug.callback`, the number of rows of each
call at run time (jitted, inside loops and under `jax.grad` alike). `rows` is the total since
`reset()`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


class CountingModel:
    def __init__(self, key, channels: int = 3, classes: int = 4, width: int = 6):
        k1, k2, k3 = jax.random.split(key, 3)
        self.w1 = jax.random.normal(k1, (3, 3, channels, width)) * 0.6
        self.w2 = jax.random.normal(k2, (3, 3, width, width)) * 0.4
        self.wd = jax.random.normal(k3, (width, classes))
        self.rows = 0

    def reset(self) -> None:
        self.rows = 0

    def _count(self, n) -> None:
        self.rows += int(n)

    def features_and_logits(self, xb, delta):
        jax.debug.callback(self._count, jnp.int32(xb.shape[0]))
        dn = ("NHWC", "HWIO", "NHWC")
        h = jax.nn.relu(jax.lax.conv_general_dilated(xb, self.w1, (1, 1), "SAME", dimension_numbers=dn))
        feat = jax.nn.relu(jax.lax.conv_general_dilated(h, self.w2, (2, 2), "SAME", dimension_numbers=dn))
        if delta is not None:
            feat = feat + delta
        return feat, feat.mean((1, 2)) @ self.wd

    def __call__(self, xb):
        return self.features_and_logits(xb, None)[1]
