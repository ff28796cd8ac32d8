"""Oracle models and inputs for `rexjax explain --mode spectral|tabular|voxel` (factories for
`--model tests.commands.nd_models:FACTORY`): each decides class 1 exactly when a planted
region is intact, so the true minimal explanation is known.

    signal_model()   x[B, N, C] -> logits[B, 2]: class 1 iff every element of SEGMENT in
                     channel 0 has the sign of the planted pattern, |x| > 1
    volume_model()   x[B, D, H, W, C] -> logits[B, 2]: class 1 iff every voxel of CUBE
                     has channel 0 above 1.5

The signal's pattern alternates +2, -2 along SEGMENT over a baseline within +-0.5, so no
occlusion brings it back: a hidden element becomes 0 (a number), a value within the baseline
(min, mean), or the linear interpolation of its visible neighbours ('spectral'), which never
has the pattern's sign and magnitude (consecutive interpolated values differ by less than 2).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

N, SEGMENT = 64, (24, 32)  # the signal's length and its planted segment [start, stop)
VOLUME, CUBE = (8, 8, 8), (slice(2, 5), slice(3, 6), slice(1, 4))
PATTERN = np.where(np.arange(SEGMENT[1] - SEGMENT[0]) % 2 == 0, 2.0, -2.0).astype(np.float32)


def _logits(fires):
    score = jnp.where(fires, 5.0, -5.0)
    return jnp.stack([jnp.zeros_like(score), score], axis=-1)


def signal_model():
    def logits(x):  # x[B, N, C]
        seg = x[:, SEGMENT[0]:SEGMENT[1], 0] * jnp.sign(PATTERN)
        return _logits((seg > 1.0).all(axis=1))

    return logits


def volume_model():
    def logits(x):  # x[B, D, H, W, C]
        return _logits((x[(slice(None),) + CUBE + (0,)] > 1.5).all(axis=(1, 2, 3)))

    return logits


def signal(channels: int = 2, seed: int = 0) -> np.ndarray:
    """f32[N, channels]: a baseline within +-0.5, PATTERN planted in channel 0 of SEGMENT."""
    rng = np.random.default_rng(seed)
    x = (0.3 * np.sin(np.arange(N) / 3.0)[:, None] + rng.uniform(-0.2, 0.2, (N, channels))).astype(np.float32)
    x[SEGMENT[0]:SEGMENT[1], 0] = PATTERN
    return x


def volume(seed: int = 0) -> np.ndarray:
    """f32[D, H, W] (one channel, no channel axis): uniform in [0, 1], CUBE set to 2."""
    v = np.random.default_rng(seed).uniform(0.0, 1.0, VOLUME).astype(np.float32)
    v[CUBE] = 2.0
    return v
