"""Every explainer by name: `make(name, **config) -> Method`, ReX and the 11 baselines alike.

    method = methods.make("rise", n_masks=1000, mask_mode="ad")
    attribution = method(classifier, x, key=key)   # target=None: the top-1 class on x
    attribution = method(classifier, x, target, key=key)   # Attribution(map, forward_images, record)

One signature for every explainer, `method(classifier, x f32[H,W,C], target=None, *, key)`:
`key` is keyword-only and required (an integer seed or a `jax.random` key; deterministic
methods ignore it). `NamedMethod` checks the key and x and resolves `target=None` to the
classifier's top-1 class on x, in one place for every method.

A method module holds a factory `factory(**config) -> fn` with
`fn(classifier, x f32[H,W,C], target int, *, key) -> Attribution`; the factory validates its
config at once (bad values fail before any model call). Adding a method = writing that
module and one `Entry` in `REGISTRY` (module path : factory name, imported lazily).

Options many methods share (`mask_mode` for occlusion-style methods, `batch_size`, `layer`
for Grad-CAM) can be given to `make(..., shared={...})`: each is passed only to factories
that take it (`accepts`), so a caller never needs to know which method uses what.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, Mapping, NamedTuple, Optional

from rexjax import checks
from rexjax.types import Attribution


class Entry(NamedTuple):
    """Where a registered method lives, as "module:function" paths (imported lazily).

    factory: `factory(**config) -> fn`.
    options: for a factory taking `**config`, `options() -> set[str]`, the names it accepts
        there (None: its keyword parameters say it all).
    settings: `settings(config) -> dict`, every setting the factory runs with for `config`,
        defaults included, where its keyword defaults do not say it all (None: they do).
    """

    factory: str
    options: Optional[str] = None
    settings: Optional[str] = None


REGISTRY: dict[str, Entry] = {
    "rex": Entry("rexjax.causal.method:rex", options="rexjax.causal.config:field_names"),
    "rise": Entry("rexjax.saliency.rise:rise"),
    "shape": Entry("rexjax.saliency.shape:shape"),
    "occlusion": Entry("rexjax.saliency.occlusion:occlusion"),
    "kernel_shap": Entry("rexjax.saliency.kernel_shap:kernel_shap", settings="rexjax.saliency.kernel_shap:settings"),
    "lime": Entry("rexjax.saliency.lime:lime", settings="rexjax.saliency.lime:settings"),
    "integrated_gradients": Entry("rexjax.saliency.integrated_gradients:integrated_gradients"),
    "gradient_shap": Entry("rexjax.saliency.gradient_shap:gradient_shap"),
    "noise_tunnel": Entry("rexjax.saliency.noise_tunnel:noise_tunnel"),
    "lrp": Entry("rexjax.saliency.lrp:lrp"),
    "gradcam": Entry("rexjax.saliency.gradcam:gradcam"),
    "gradcam_pp": Entry("rexjax.saliency.gradcam:gradcam_pp"),
    "extremal": Entry("rexjax.saliency.extremal:extremal"),
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

    def __call__(self, classifier, x, target=None, *, key=None) -> Attribution:
        """Attribution of `target` (None: the classifier's top-1 class on x) for x f32[H,W,C].

        `key` is required (keyword only; `None` is refused with a ValueError naming it)."""
        key = checks.key(key)
        x = checks.image(x, ranks=checks.INPUT_RANKS)  # each method takes the ranks it supports
        if target is None:
            target = classifier.predicted_class(classifier.full_probs(x))
        return self.fn(classifier, x, target, key=key)


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


def _load(path: str) -> Callable:
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def factory(name: str) -> Callable:
    """The factory function of method `name` (imports its module)."""
    return _load(REGISTRY[canonical(name)].factory)


def accepts(name: str) -> set[str]:
    """Config keys the factory of `name` takes: its keyword parameters, plus, when it takes
    `**config`, the names its registry `Entry.options` lists (ReX: the RexConfig fields)."""
    entry = REGISTRY[canonical(name)]
    params = inspect.signature(_load(entry.factory)).parameters.values()
    named = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return named | (set(_load(entry.options)()) if entry.options else set())


def settings(name: str, config: Mapping[str, Any]) -> Optional[dict]:
    """Every setting the factory of `name` runs with for `config`, defaults included, when its
    registry `Entry.settings` says so (LIME / KernelSHAP: superpixel defaults too); else None."""
    entry = REGISTRY[canonical(name)]
    return dict(_load(entry.settings)(dict(config))) if entry.settings else None


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
