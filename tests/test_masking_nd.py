"""Occlusion values on signals x[N, C] and volumes x[D, H, W, C] against numpy re-derivations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax import masking


def spectral_reference(x: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The rule written run by run (float64): a hidden run between visible l and r is the line
    from x[l] to x[r]; a run at an edge takes its one neighbour; nothing visible: 0."""
    n = len(visible)
    out = x.astype(np.float64).copy()
    shown = np.flatnonzero(visible)
    i = 0
    while i < n:
        if visible[i]:
            i += 1
            continue
        j = i
        while j < n and not visible[j]:
            j += 1  # hidden run [i, j)
        left, right = i - 1, j
        for t in range(i, j):
            if not shown.size:
                out[t] = 0.0
            elif left < 0:
                out[t] = x[right]
            elif right >= n:
                out[t] = x[left]
            else:
                out[t] = x[left] + (x[right] - x[left]) * (t - left) / (right - left)
        i = j
    return out


def test_spectral_fill_matches_the_run_by_run_rule():
    """Catches: neighbours swapped (interpolating backwards), the hidden run's own values
    shown (the tool's rule), an edge run set to 0 instead of its neighbour, one channel only."""
    rng = np.random.default_rng(0)
    fill = jax.jit(masking.spectral_fill)
    n = 40
    cases = [rng.random(n) < p for p in (0.2, 0.5, 0.8) for _ in range(30)]
    edge = np.ones(n, bool)
    edge[:5] = edge[-7:] = False
    cases += [edge, np.zeros(n, bool), np.ones(n, bool), np.arange(n) == 17]
    for visible in cases:
        x = rng.normal(size=(n, 3)).astype(np.float32)
        got = np.asarray(fill(jnp.asarray(x), jnp.asarray(visible)))
        want = np.stack([spectral_reference(x[:, c], visible) for c in range(3)], -1)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_spectral_mask_mode_through_painted():
    """painted(..., "spectral") shows x where m = 1 and the interpolation where m = 0, per mask
    of a batch (catches a fill computed once for the batch instead of per mask); images are
    refused with one line."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 2)).astype(np.float32)
    masks = rng.random((5, 16)) < 0.5
    seen = []
    classify = masking.painted(lambda xb: (seen.append(xb), jnp.zeros((xb.shape[0], 2)))[1], "spectral")
    classify(jnp.asarray(x), jnp.asarray(masks, jnp.float32))
    got = np.asarray(seen[0])
    for b in range(5):
        want = np.stack([spectral_reference(x[:, c], masks[b]) for c in range(2)], -1)
        np.testing.assert_allclose(got[b], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="spectral.*1-D signals"):
        classify(jnp.ones((4, 4, 3)), jnp.ones((1, 4, 4)))
    assert masking.parse_mask_mode("spectral") == "spectral"


@pytest.mark.parametrize("shape", [(12,), (4, 5, 6)])
@pytest.mark.parametrize("mode", [0.25, "zero", "min", "max", "mean"])
def test_fill_values_over_every_spatial_axis(shape, mode):
    """Per-channel statistics over all spatial axes (catches a statistic over the first two
    axes only, the image case, or over the channels too)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape + (3,)).astype(np.float32)
    flat = x.reshape(-1, 3)
    want = {0.25: np.full(3, 0.25), "zero": np.zeros(3), "min": flat.min(0), "max": flat.max(0), "mean": flat.mean(0)}
    masks = rng.random((2,) + shape) < 0.5
    out = np.asarray(masking.apply_masks(jnp.asarray(x), jnp.asarray(masks), masking.fill_image(jnp.asarray(x), mode)))
    np.testing.assert_allclose(out[~masks], np.broadcast_to(want[mode], out[~masks].shape), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[masks], np.broadcast_to(x, out.shape)[masks])


def blur_reference(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian (radius ceil(3 sigma), edge padding) with np.convolve, axis by axis."""
    radius = max(1, int(3.0 * sigma + 0.999))
    t = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    out = x.astype(np.float64)
    for axis in range(x.ndim - 1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        out = np.apply_along_axis(lambda v: np.convolve(v, k, mode="valid"), axis, padded)
    return out


@pytest.mark.parametrize("shape", [(20,), (6, 7, 8)])
def test_blur_on_signals_and_volumes(shape):
    """Catches a blur that skips a spatial axis (or blurs the channels)."""
    x = np.random.default_rng(3).normal(size=shape + (2,)).astype(np.float32)
    got = np.asarray(masking.gaussian_blur(jnp.asarray(x), 1.3))
    np.testing.assert_allclose(got, blur_reference(x, 1.3), rtol=1e-4, atol=1e-5)
