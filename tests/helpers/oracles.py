"""Synthetic classifiers whose true explanation is known (no weights, fast).

Images are strictly positive (values in [0.5, 1]); masking with 0 makes a pixel "hidden".
Each oracle returns logits `[B, 2]`: class 1 when its condition on visible patches holds.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 1.0, (h, w, 3)).astype(np.float32)


def patch_mask(h: int, w: int, r: int, c: int, size: int = 20) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[r : r + size, c : c + size] = True
    return m


def _visible_fraction(x, patch):
    seen = (x.min(axis=-1) > 0.25).astype(jnp.float32)  # [B, H, W]
    return (seen * patch).sum(axis=(1, 2)) / patch.sum()


def patch_oracle(patches, mode: str = "and"):
    """Class 1 iff every patch ("and") / any patch ("or") is fully visible."""
    patches = [jnp.asarray(p, jnp.float32) for p in patches]

    def logits(x):
        full = jnp.stack([_visible_fraction(x, p) >= 0.999 for p in patches])  # [P, B]
        fires = full.all(0) if mode == "and" else full.any(0)
        score = jnp.where(fires, 5.0, -5.0)
        return jnp.stack([jnp.zeros_like(score), score], axis=-1)

    return logits
