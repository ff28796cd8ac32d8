"""Every explainer by name: `make(name, **config) -> Method`, ReX and the 11 baselines alike.

    method = methods.make("rise", n_masks=1000, mask_mode="ad")
    attribution = method(key, classifier, x, target)     # Attribution(map, forward_images, record)

A method module holds a factory `factory(**config) -> fn` with
`fn(key, classifier, x f32[H,W,C], target) -> Attribution`; the factory validates its
config at once (bad values fail before any model call). Adding a method = writing that
module and one line in `REGISTRY` (module path : factory name, imported lazily).

Options many methods share (`mask_mode` for occlusion-style methods, `batch_size`, `layer`
for Grad-CAM) can be given to `make(..., shared={...})`: each is passed only to factories
that take it, so a caller never needs to know which method uses what.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Mapping, NamedTuple, Optional

from rexjax import checks
from rexjax.types import Attribution

REGISTRY: dict[str, str] = {
    "rex": "rexjax.causal.method:rex",
    "rise": "rexjax.saliency.rise:rise",
    "shape": "rexjax.saliency.shape:shape",
    "occlusion": "rexjax.saliency.occlusion:occlusion",
    "kernel_shap": "rexjax.saliency.kernel_shap:kernel_shap",
    "lime": "rexjax.saliency.lime:lime",
    "integrated_gradients": "rexjax.saliency.integrated_gradients:integrated_gradients",
    "gradient_shap": "rexjax.saliency.gradient_shap:gradient_shap",
    "noise_tunnel": "rexjax.saliency.noise_tunnel:noise_tunnel",
    "lrp": "rexjax.saliency.lrp:lrp",
    "gradcam": "rexjax.saliency.gradcam:gradcam",
    "gradcam_pp": "rexjax.saliency.gradcam:gradcam_pp",
    "extremal": "rexjax.saliency.extremal:extremal",
}
ALIASES: dict[str, str] = {
    "ig": "integrated_gradients",
    "smoothgrad": "noise_tunnel",
    "noisetunnel": "noise_tunnel",
    "kernelshap": "kernel_shap",
    "gradientshap": "gradient_shap",
    "gradcampp": "gradcam_pp",
    "grad_cam": "gradcam",
}


class NamedMethod(NamedTuple):
    """A Method built by `make`: its registry name, the config it was built with, the function."""

    name: str
    config: Mapping[str, Any]
    fn: Callable[..., Attribution]

    def __call__(self, key, classifier, x, target) -> Attribution:
        return self.fn(checks.key(key), classifier, x, target)


def names() -> list[str]:
    """Registered method names."""
    return list(REGISTRY)


def canonical(name: str) -> str:
    """Method name or alias -> registry name (ValueError naming the known ones)."""
    if not isinstance(name, str):
        raise ValueError(f"method name must be a string, got {name!r}")
    n = name.strip().lower()
    n = ALIASES.get(n, n)
    if n not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; known: {names()} (aliases {sorted(ALIASES)})")
    return n


def factory(name: str) -> Callable:
    """The factory function of method `name` (imports its module)."""
    module, attr = REGISTRY[canonical(name)].split(":")
    return getattr(importlib.import_module(module), attr)


def accepts(name: str) -> set[str]:
    """Config keys the factory of `name` takes: its keyword parameters, plus its declared
    `options` when it takes `**config` (ReX: the RexConfig fields)."""
    fac = factory(name)
    params = inspect.signature(fac).parameters.values()
    named = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return named | set(getattr(fac, "options", ()))


def make(name: str, *, shared: Optional[Mapping[str, Any]] = None, **config) -> NamedMethod:
    """Builds method `name` with `config` (its factory's keywords); `shared` options are added
    where the factory takes them and the config does not set them."""
    n = canonical(name)
    fac = factory(n)
    if shared:
        takes = accepts(n)
        config = {**{k: v for k, v in shared.items() if k in takes}, **config}
    try:
        fn = fac(**config)
    except TypeError as e:  # an unknown keyword: name it and the valid ones
        raise ValueError(f"method {n!r}: {e}; valid options: {sorted(accepts(n))}") from None
    return NamedMethod(n, dict(config), fn)
