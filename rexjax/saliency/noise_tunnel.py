"""NoiseTunnel / SmoothGrad (Smilkov et al. 2017) around any Method.

    S(x) = 1/n sum_k M(x + eps_k),   eps_k ~ N(0, sigma^2),  sigma = stdev * (max x - min x)

(`relative=True`, the SmoothGrad paper's noise level; `relative=False` makes `stdev` absolute,
Captum's `stdevs`). `nt_type`: "smoothgrad" (mean), "smoothgrad_sq" (mean of squares),
"vargrad" (variance). The base method M is a registered name built with `base_config`
(default: "integrated_gradients", the ReX paper's NoiseTunnel) or any Method object; its
maps are aggregated (channel-summed maps, whereas Captum squares per-channel attributions
for smoothgrad_sq). Sample k uses `keys.index(key, k)`, split into (noise key, base key).
forward_images = the sum of the base method's over the n samples.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import checks, keys
from rexjax.types import Attribution

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def noise_tunnel(
    base: Any = "integrated_gradients",
    base_config: Optional[Mapping[str, Any]] = None,
    n_samples: int = 5,
    stdev: float = 0.15,
    nt_type: str = "smoothgrad",
    relative: bool = True,
):
    """SmoothGrad factory around `base`: a registered method name (built with `base_config`
    through `rexjax.methods.make`) or a Method `(classifier, x, target, *, key) -> Attribution`.
    Returns `fn(classifier, x, target, *, key) -> Attribution`."""
    checks.positive_int(n_samples=n_samples)
    checks.one_of("nt_type", nt_type, NT_TYPES)
    if isinstance(stdev, bool) or not isinstance(stdev, (int, float, np.integer, np.floating)) or not stdev >= 0:
        raise ValueError(f"stdev must be a number >= 0, got {stdev!r}")
    if isinstance(base, str):
        # The registry sits above the method modules; imported here, when a name is resolved.
        from rexjax import methods

        base = methods.make(base, **dict(base_config or {}))
    elif base_config:
        raise ValueError("base_config configures a base given by name; got a method object as base")
    elif not callable(base):
        raise ValueError(f"base must be a method name or a Method, got {type(base).__name__}")

    noisy = jax.jit(lambda key, x, sigma: x + sigma * jax.random.normal(key, x.shape, x.dtype))

    def explain(classifier, x, target, *, key) -> Attribution:
        x, t = classifier.check(x, target)
        sigma = stdev * (x.max() - x.min()) if relative else jnp.asarray(stdev, x.dtype)
        total = total_sq = 0.0
        used = 0
        for k in range(n_samples):
            kn, kb = jax.random.split(keys.index(key, k))
            s = base(classifier, noisy(kn, x, sigma), t, key=kb)
            total = total + s.map
            total_sq = total_sq + s.map**2
            used += s.forward_images
        mean, mean_sq = total / n_samples, total_sq / n_samples
        out = {"smoothgrad": mean, "smoothgrad_sq": mean_sq, "vargrad": mean_sq - mean**2}[nt_type]
        return Attribution(out, int(used))

    return explain
