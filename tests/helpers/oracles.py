"""Synthetic classifiers whose true explanation is known (no weights, fast).

Images are strictly positive (values in [0.5, 1]); masking with 0 makes a pixel "hidden".
Each oracle returns logits `[B, 2]`: class 1 when its condition on visible patches holds.
The marked oracles and their inputs take any spatial shape S (signals [N], images [H, W],
volumes [D, H, W]: `marked_input`, `random_boxes`); the 2-D helpers are their image cases.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return random_input((h, w), seed)


def random_input(shape: tuple, seed: int = 0) -> np.ndarray:
    """f32[*shape, 3] uniform in [0.5, 1] (`image` for shape (h, w))."""
    return np.random.default_rng(seed).uniform(0.5, 1.0, tuple(shape) + (3,)).astype(np.float32)


def patch_mask(h: int, w: int, r: int, c: int, size: int = 20) -> np.ndarray:
    return box_mask((h, w), (r, c), size)


def box_mask(shape: tuple, corner: tuple, size: int) -> np.ndarray:
    """bool[*shape]: the cube of side `size` at `corner` (a size x size patch on images)."""
    m = np.zeros(tuple(shape), bool)
    m[tuple(slice(c, c + size) for c in corner)] = True
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


def weighted_oracle(patches, gains, bias: float):
    """Logits [0, s] with s = bias + sum_k gains[k] x (visible fraction of patches[k]): a
    patch with a negative gain is a distractor, showing it lowers the class-1 score."""
    patches = [jnp.asarray(p, jnp.float32) for p in patches]

    def logits(x):
        score = bias + sum(g * _visible_fraction(x, p) for g, p in zip(gains, patches))
        return jnp.stack([jnp.zeros_like(score), score], axis=-1)

    return logits


# Position-free oracles: the patches are marked in the image itself (channel 1 = 1.0 on patch
# A, channel 2 = 1.0 on patch B, every other value <= 0.95), so one compiled model explains
# any layout of patches of a given size (tools: tests/causal/oracle_quality.py).
MARK = 0.975


def marked_image(h: int, w: int, patches, seed: int = 0) -> np.ndarray:
    """`image(h, w, seed)` clipped to [0.5, 0.95] with patch i marked in channel i + 1."""
    return marked_input((h, w), patches, seed)


def marked_input(shape: tuple, patches, seed: int = 0) -> np.ndarray:
    """`random_input(shape, seed)` clipped to [0.5, 0.95] with patch i (bool[*shape]) marked
    (1.0, the brightest value) in channel i + 1."""
    x = np.minimum(random_input(shape, seed), 0.95)
    for i, p in enumerate(patches):
        x[..., i + 1][p] = 1.0
    return x


def marked_oracle(patch_pixels: int, mode: str = "single"):
    """Class 1 iff all `patch_pixels` marked pixels of patch A ("single"), of A or of B
    ("or"), of A and of B ("and") are visible (a hidden pixel is 0 in every channel)."""

    def logits(x):  # x[B, *S, C], any spatial rank
        seen = x.min(axis=-1) > 0.25
        spatial = tuple(range(1, x.ndim - 1))
        full_a = (seen & (x[..., 1] > MARK)).sum(axis=spatial) >= patch_pixels
        full_b = (seen & (x[..., 2] > MARK)).sum(axis=spatial) >= patch_pixels
        fires = {"single": full_a, "or": full_a | full_b, "and": full_a & full_b}[mode]
        score = jnp.where(fires, 5.0, -5.0)
        return jnp.stack([jnp.zeros_like(score), score], axis=-1)

    return logits


def random_patches(h: int, w: int, size: int, count: int, rng, gap: int = 4):
    """`count` non-overlapping size x size patches (at least `gap` pixels apart), uniform."""
    return random_boxes((h, w), size, count, rng, gap)


def random_boxes(shape: tuple, size: int, count: int, rng, gap: int = 4):
    """`count` cubes of side `size` in `shape` (bool[*shape] each), consecutive ones at least
    `gap` elements apart on some axis, corners uniform (`random_patches` for shape (h, w))."""
    while True:
        corners = [tuple(int(rng.integers(0, n - size + 1)) for n in shape) for _ in range(count)]
        if all(max(abs(i - j) for i, j in zip(a, b)) >= size + gap for a, b in zip(corners, corners[1:])):
            return [box_mask(shape, c, size) for c in corners]
