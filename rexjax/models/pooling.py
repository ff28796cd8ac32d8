"""torch `nn.AvgPool2d` in JAX, with its `ceil_mode` and `count_include_pad` conventions.

For output index o along an axis of size n (kernel k, stride s, padding p), torch averages
the window `[o*s - p, o*s - p + k)`; the divisor is

* count_include_pad=True: the window clipped to `[-p, n + p)` (zero padding counts, the
  ceil-mode overhang beyond the padding does not);
* count_include_pad=False: the window clipped to `[0, n)` (real inputs only).

Output size `floor_or_ceil((n + 2p - k) / s) + 1`, minus one in ceil mode when the last
window would start in the right padding. Separable, so the divisor is a static outer
product (a constant to ConvAD: the sum is the pooling, the division pointwise).
"""

from __future__ import annotations

import jax
import numpy as np
from jax import lax


def _axis(n: int, k: int, s: int, p: int, ceil_mode: bool, count_include_pad: bool) -> tuple[int, np.ndarray]:
    """(extra right padding for ceil mode, divisor per output index) along one axis."""
    span = n + 2 * p - k
    if span < 0:
        raise ValueError(f"avg_pool2d: kernel {k} larger than the padded input {n + 2 * p}")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    start = np.arange(out) * s - p
    end = start + k
    if count_include_pad:
        div = np.minimum(end, n + p) - start
    else:
        div = np.minimum(end, n) - np.maximum(start, 0)
    extra = max(0, (out - 1) * s + k - (n + 2 * p))
    return extra, div.astype(np.float32)


def avg_pool2d(
    x: jax.Array, kernel: int, stride: int, padding: int = 0, *, ceil_mode: bool = False, count_include_pad: bool = True
) -> jax.Array:
    """torch `F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad)` on NHWC:
    x[B,H,W,C] -> [B,Ho,Wo,C] (defaults as torch's)."""
    (h, w), k, s, p = x.shape[1:3], kernel, stride, padding
    eh, dh = _axis(h, k, s, p, ceil_mode, count_include_pad)
    ew, dw = _axis(w, k, s, p, ceil_mode, count_include_pad)
    pad = ((0, 0), (p, p + eh), (p, p + ew), (0, 0))
    total = lax.reduce_window(x, 0.0, lax.add, (1, k, k, 1), (1, s, s, 1), pad)
    return total / (dh[:, None] * dw[None, :])[None, :, :, None].astype(x.dtype)
