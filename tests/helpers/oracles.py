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


def graded_oracle(patches, scale: float = 6.0):
    """Graded confidence: logits [0, s] with s = scale x (sum of the P patches' visible
    fractions - (P - 1/2)): class 1 once more than P - 1/2 patches' worth of pixels are
    visible, and its probability sigmoid(s) grows with every visible patch pixel (sigmoid(3)
    = 0.953 on the full image for scale 6), so `confidence_filter` / `min_confidence`
    thresholds fall between "passes" and "full"."""
    patches = [jnp.asarray(p, jnp.float32) for p in patches]

    def logits(x):
        frac = jnp.stack([_visible_fraction(x, p) for p in patches]).sum(0)  # [B]
        score = scale * (frac - (len(patches) - 0.5))
        return jnp.stack([jnp.zeros_like(score), score], axis=-1)

    return logits


# Position-free oracles: the patches are marked in the image itself (channel 1 = 1.0 on patch
# A, channel 2 = 1.0 on patch B, every other value <= 0.95), so one compiled model explains
# any layout of patches of a given size (tools: tests/causal/oracle_quality.py).
MARK = 0.975


def marked_image(h: int, w: int, patches, seed: int = 0) -> np.ndarray:
    """`image(h, w, seed)` clipped to [0.5, 0.95] with patch i marked in channel i + 1."""
    x = np.minimum(image(h, w, seed), 0.95)
    for i, p in enumerate(patches):
        x[..., i + 1][p] = 1.0
    return x


def marked_oracle(patch_pixels: int, mode: str = "single"):
    """Class 1 iff all `patch_pixels` marked pixels of patch A ("single"), of A or of B
    ("or"), of A and of B ("and") are visible (a hidden pixel is 0 in every channel)."""

    def logits(x):
        seen = x.min(axis=-1) > 0.25
        full_a = (seen & (x[..., 1] > MARK)).sum(axis=(1, 2)) >= patch_pixels
        full_b = (seen & (x[..., 2] > MARK)).sum(axis=(1, 2)) >= patch_pixels
        fires = {"single": full_a, "or": full_a | full_b, "and": full_a & full_b}[mode]
        score = jnp.where(fires, 5.0, -5.0)
        return jnp.stack([jnp.zeros_like(score), score], axis=-1)

    return logits


def random_patches(h: int, w: int, size: int, count: int, rng, gap: int = 4):
    """`count` non-overlapping size x size patches (at least `gap` pixels apart), uniform."""
    while True:
        corners = [(int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))) for _ in range(count)]
        if all(max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= size + gap for a, b in zip(corners, corners[1:])):
            return [patch_mask(h, w, r, c, size) for r, c in corners]
