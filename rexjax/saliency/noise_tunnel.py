"""NoiseTunnel / SmoothGrad (Smilkov et al. 2017) around any saliency method.

    S(x) = 1/n sum_k M(x + eps_k),   eps_k ~ N(0, sigma^2),  sigma = stdev * (max x - min x)

(`relative=True`, the SmoothGrad paper's noise level; `relative=False` makes `stdev` absolute,
Captum's `stdevs`). `nt_type`: "smoothgrad" (mean), "smoothgrad_sq" (mean of squares),
"vargrad" (variance). The base method's map is aggregated (channel-summed maps, whereas
Captum squares per-channel attributions for smoothgrad_sq). Sample k uses
`fold_in(key, k)`. forward_images = n_samples * the base method's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rexjax.saliency._common import Saliency, check_image, check_positive

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def noise_tunnel(
    base=None, n_samples: int = 5, stdev: float = 0.15, nt_type: str = "smoothgrad", relative: bool = True
):
    """SmoothGrad factory around `base` (a `(key, model, x, target) -> Saliency` function;
    default: `integrated_gradients()`, the ReX paper's NoiseTunnel). Returns the same signature."""
    check_positive(n_samples=n_samples)
    if nt_type not in NT_TYPES:
        raise ValueError(f"nt_type must be one of {NT_TYPES}, got {nt_type!r}")
    if not stdev >= 0:
        raise ValueError(f"stdev must be >= 0, got {stdev!r}")
    if base is None:
        from rexjax.saliency.integrated_gradients import integrated_gradients

        base = integrated_gradients()

    noisy = jax.jit(lambda key, x, sigma: x + sigma * jax.random.normal(key, x.shape, x.dtype))

    def explain(key, model, x, target) -> Saliency:
        x = check_image(x)
        sigma = stdev * (x.max() - x.min()) if relative else jnp.asarray(stdev, x.dtype)
        total = total_sq = 0.0
        used = 0
        for k in range(n_samples):
            kn, kb = jax.random.split(jax.random.fold_in(key, k))
            s = base(kb, model, noisy(kn, x, sigma), target)
            total = total + s.map
            total_sq = total_sq + s.map**2
            used += s.forward_images
        mean, mean_sq = total / n_samples, total_sq / n_samples
        out = {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean**2}[nt_type]
        return Saliency(out, used)

    return explain
