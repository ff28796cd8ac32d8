"""rho-robustness of an explanation (Activation-Deactivation paper, Definition 2 and Sec. 5).

The explanation's pixels (mask E, 1 = explanation) are pasted on each context image b_j:
`x E + b_j (1 - E)`; rho is the fraction of contexts whose top-1 class is the target. The
pasted images are classified whole (all pixels visible) with `classifier.probs`,
`batch_size` at a time (`rexjax.batching.push`). The paper's two context sets, 100 each:

* K1 (`solid_backgrounds`): solid colours, uniform over the full colour range of the model's
  input space (`colour_bounds`: by default the preprocessing's image of [0, 255]);
* K2 (`other_class_backgrounds`): images of *other classes* from the data set, given by the
  caller (paths or arrays) with their labels, or labelled by the model's top-1.

`rho_robustness` measures both. `rho_noise` is a different context set, kept under its own
name: IID uniform noise images within the same colour bounds (`noise_backgrounds`).
`rho(classifier, x, mask, target, backgrounds)` takes any backgrounds.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import batching, checks

Bounds = Union[None, str, tuple]


class Robustness(NamedTuple):
    rho_solid: float  # K1: solid colours
    rho_other: float  # K2: images of other classes
    forward_images: int


def _range_of_preprocessing(classifier) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    ends = []
    for v in (0, 255):
        try:
            y = np.asarray(classifier.preprocess(Image.new("RGB", (8, 8), (v, v, v))), np.float32)
        except Exception as e:  # noqa: BLE001 - any failure means: no usable preprocessing
            raise ValueError(
                f"bounds=None takes the colour range from the model's preprocessing, which failed on a "
                f"PIL image ({type(e).__name__}: {e}); pass bounds=(low, high) or bounds='image'"
            ) from e
        ends.append(y.reshape(-1, y.shape[-1]).mean(0))
    return np.minimum(*ends), np.maximum(*ends)


def colour_bounds(classifier, x, bounds: Bounds = None) -> tuple[jax.Array, jax.Array]:
    """Per-channel (low f32[C], high f32[C]) of the colours backgrounds are drawn from.

    bounds: None (default) = the full colour range of the model input space, the
    preprocessing's image of [0, 255]: `classifier.preprocess` applied to a black and a
    white image (per-channel monotone preprocessing assumed, as every zoo model's
    `(v - mean) / std`; the preprocessing must take a PIL image); a Classifier without
    preprocessing must be told: (low, high), scalars or per channel, in model input space;
    or "image" = the per-channel min / max of x itself (a narrower range: only the image's
    own colours).
    """
    x = checks.image(x)
    c = x.shape[-1]
    if isinstance(bounds, str):
        if bounds != "image":
            raise ValueError(f"bounds must be None, 'image' or (low, high), got {bounds!r}")
        return x.min(axis=(0, 1)), x.max(axis=(0, 1))
    if bounds is None:
        if not classifier.has_preprocess:
            raise ValueError(
                "this classifier has no preprocessing, so the colour range of its input space is unknown: "
                "pass bounds=(low, high) in model input space, or bounds='image' for the image's own min/max"
            )
        low, high = _range_of_preprocessing(classifier)
        if low.shape != (c,):
            raise ValueError(f"the preprocessing gives {low.shape[0]} channels, the image {c}")
    else:
        try:
            low, high = bounds
        except (TypeError, ValueError):
            raise ValueError(f"bounds must be None, 'image' or (low, high), got {bounds!r}") from None
    low, high = (jnp.broadcast_to(jnp.asarray(b, x.dtype), (c,)) for b in (low, high))
    if not bool(jnp.all(jnp.isfinite(low) & jnp.isfinite(high) & (low <= high))):
        raise ValueError(f"bounds must be finite with low <= high, got {low}, {high}")
    return low, high


def solid_backgrounds(key, k: int, x, bounds: tuple) -> jax.Array:
    """K1: k solid-colour images shaped like x, each one colour uniform per channel in
    bounds = (low, high) (from `colour_bounds`) -> f32[k, H, W, C]."""
    checks.positive_int(k=k)
    low, high = (jnp.asarray(b, x.dtype) for b in bounds)
    c = jax.random.uniform(checks.key(key), (k, 1, 1, x.shape[-1]), x.dtype)
    return jnp.broadcast_to(low + c * (high - low), (k,) + x.shape)


def noise_backgrounds(key, k: int, x, bounds: tuple) -> jax.Array:
    """k IID uniform-noise images shaped like x within bounds = (low, high) -> f32[k, H, W, C]."""
    checks.positive_int(k=k)
    low, high = (jnp.asarray(b, x.dtype) for b in bounds)
    return low + jax.random.uniform(checks.key(key), (k,) + x.shape, x.dtype) * (high - low)


def other_class_backgrounds(
    classifier, images, target, *, labels: Optional[Sequence[int]] = None, k: Optional[int] = None,
    key=None, batch_size: Optional[int] = None,
) -> jax.Array:
    """K2: the images of `images` whose class is not `target` -> f32[K, H, W, C].

    images: paths / PIL images / arrays (each through `classifier.prepare`), or one array
    [N, H, W, C] already in model input space. labels: their classes (e.g. the data set's
    ground truth); None = the model's top-1 on each. k: keep a random subset of k of them
    (`key` required; ValueError when fewer than k remain); None = all of them.
    """
    if isinstance(images, (np.ndarray, jax.Array)) and np.ndim(images) == 4:
        stack = jnp.asarray(images, jnp.float32)
    else:
        stack = jnp.stack([classifier.prepare(im) for im in images]) if len(images) else None
    if stack is None or stack.shape[0] == 0:
        raise ValueError("other_class_backgrounds needs at least one image")
    t = checks.target(target, classifier.num_classes_for(stack[0]))
    if labels is None:
        batch_size = batching.resolve_batch_size(batch_size)
        labels = np.asarray(_top1(classifier, stack, batch_size))
    else:
        labels = np.asarray(labels)
        if labels.shape != (stack.shape[0],):
            raise ValueError(f"labels must give one class per image ({stack.shape[0]}), got shape {labels.shape}")
    keep = np.flatnonzero(labels != t)
    if k is not None:
        checks.positive_int(k=k)
        if len(keep) < k:
            raise ValueError(f"only {len(keep)} of {stack.shape[0]} images are of a class other than {t}, "
                             f"{k} wanted: pass more images or a smaller k")
        keep = np.sort(np.asarray(jax.random.permutation(checks.key(key), keep))[:k])
    if len(keep) == 0:
        raise ValueError(f"none of the {stack.shape[0]} images is of a class other than {t}")
    return stack[keep]


@functools.partial(jax.jit, static_argnums=(0, 2))
def _top1(classifier, stack, batch_size):
    def evaluate(idx):
        return jnp.argmax(classifier.probs(stack[idx]), axis=-1)

    return batching.push(evaluate, stack.shape[0], batch_size=batch_size, read=lambda v, idx: v).values


@functools.partial(jax.jit, static_argnums=(0, 5))
def _hits(classifier, x, mask, backgrounds, target, batch_size):
    m = mask.astype(x.dtype)[..., None]

    def evaluate(idx):
        pasted = x[None] * m + backgrounds[idx] * (1 - m)
        return jnp.argmax(classifier.probs(pasted), axis=-1) == target

    return batching.push(evaluate, backgrounds.shape[0], batch_size=batch_size, read=lambda v, idx: v).values


def rho(classifier, x, mask, target, backgrounds, batch_size: Optional[int] = None) -> float:
    """Fraction of `backgrounds[K, H, W, C]` on which x's pixels under `mask` give `target`."""
    x, t = classifier.check(x, target)
    mask = jnp.asarray(checks.bool_mask(mask, "mask", x.shape[:2]))
    backgrounds = jnp.asarray(backgrounds, x.dtype)
    if backgrounds.ndim != 4 or backgrounds.shape[1:] != x.shape or backgrounds.shape[0] == 0:
        raise ValueError(f"backgrounds must be [K>0, {', '.join(map(str, x.shape))}], got {backgrounds.shape}")
    batch_size = batching.resolve_batch_size(batch_size)
    return float(_hits(classifier, x, mask, backgrounds, t, batch_size).mean())


def rho_robustness(
    key, classifier, x, mask, target, others, *, labels: Optional[Sequence[int]] = None,
    k_solid: int = 100, k_other: Optional[int] = 100, bounds: Bounds = None, batch_size: Optional[int] = None,
) -> Robustness:
    """rho against the paper's K1 (`k_solid` solid colours over `colour_bounds(bounds)`) and K2
    (`k_other` images of other classes picked from `others`, see `other_class_backgrounds`;
    k_other=None: all of them).

    key: an integer seed or a `jax.random` key (required). forward_images counts the pasted
    images rounded up to whole chunks (plus the top-1 pass over `others` when `labels` is None).
    """
    checks.positive_int(k_solid=k_solid)
    batch_size = batching.resolve_batch_size(batch_size)
    x, t = classifier.check(x, target)
    ks, ko = jax.random.split(checks.key(key))
    solid = solid_backgrounds(ks, k_solid, x, colour_bounds(classifier, x, bounds))
    other = other_class_backgrounds(classifier, others, t, labels=labels, k=k_other, key=ko, batch_size=batch_size)
    r1 = rho(classifier, x, mask, t, solid, batch_size)
    r2 = rho(classifier, x, mask, t, other, batch_size)
    n_others = len(others) if labels is None else 0
    fwd = batching.padded_count(k_solid, batch_size) + batching.padded_count(other.shape[0], batch_size)
    return Robustness(r1, r2, fwd + (batching.padded_count(n_others, batch_size) if n_others else 0))


def rho_noise(
    key, classifier, x, mask, target, k: int = 100, bounds: Bounds = None, batch_size: Optional[int] = None,
) -> float:
    """rho against k IID uniform-noise images within `colour_bounds(bounds)` (not one of the
    paper's sets: its K2 is images of other classes, see `rho_robustness`)."""
    x, t = classifier.check(x, target)
    backgrounds = noise_backgrounds(checks.key(key), k, x, colour_bounds(classifier, x, bounds))
    return rho(classifier, x, mask, t, backgrounds, batch_size)
