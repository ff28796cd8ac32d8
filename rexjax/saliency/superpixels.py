"""Superpixels for LIME and KernelSHAP, computed on the host with scikit-image.

The image is rescaled to [0, 1] (per image min/max; the model input space is usually
normalised) before segmentation. Labels are relabelled to 0..M-1.
"""

from __future__ import annotations

import inspect
from typing import Callable, Optional

import numpy as np

SUPERPIXELS = ("slic", "quickshift", "grid")
DEFAULTS = {  # quickshift: lime's defaults
    "slic": {"n_segments": 50, "compactness": 10.0},
    "quickshift": {"kernel_size": 4, "max_dist": 200, "ratio": 0.2, "seed": 0},
    "grid": {"cells": 8},
}
OPTIONS = {method: tuple(d) for method, d in DEFAULTS.items()}


def check_options(method: str, options: dict) -> None:
    """`method` must be one of SUPERPIXELS and `options` among its keywords (see `superpixels`)."""
    if method not in SUPERPIXELS:
        raise ValueError(f"superpixel method must be one of {SUPERPIXELS}, got {method!r}")
    unknown = sorted(set(options) - set(OPTIONS[method]))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for superpixel={method!r}; valid: {OPTIONS[method]}")


def resolve_options(method: str, options: Optional[dict] = None) -> dict:
    """`options` of superpixel `method`, checked, with every default filled in."""
    options = dict(options or {})
    check_options(method, options)
    return {**DEFAULTS[method], **options}


def relabel(segments) -> tuple[np.ndarray, int]:
    """Consecutive labels 0..M-1 -> (i32[*S], M); S: [H, W] for images, [N] or [D, H, W]."""
    segments = np.asarray(segments)
    if segments.ndim not in (1, 2, 3):
        raise ValueError(f"segments must be a label array [H, W] ([N] or [D, H, W]), got shape {segments.shape}")
    _, inv = np.unique(segments, return_inverse=True)
    inv = inv.reshape(segments.shape).astype(np.int32)
    return inv, int(inv.max()) + 1


def resolve_segments(x, segments=None, method: str = "slic", **kwargs) -> tuple[np.ndarray, int]:
    """User `segments` (int [H, W], relabelled) or host superpixels of x -> (i32[H, W], M)."""
    if segments is None:
        return superpixels(x, method, **kwargs)
    if np.shape(segments) != tuple(x.shape[:-1]):
        raise ValueError(f"segments must have x's spatial shape {tuple(x.shape[:-1])}, got {np.shape(segments)}")
    return relabel(segments)


def superpixels(x, method: str = "slic", **kwargs) -> tuple[np.ndarray, int]:
    """Segments of x[H, W, C] -> (i32[H, W] labels 0..M-1, M).

    slic: `n_segments` (default 50), `compactness` (10); quickshift: lime's defaults
    kernel_size 4, max_dist 200, ratio 0.2; grid: `cells` x `cells` rectangles (default 8).
    """
    import skimage.segmentation

    x = np.asarray(x, np.float64)
    if x.ndim != 3:
        raise ValueError(f"superpixels segment images [H, W, C] only, got x of shape {x.shape}: "
                         "pass segments (int labels over x's spatial axes) for signals and volumes")
    if method not in SUPERPIXELS:
        raise ValueError(f"superpixel method must be one of {SUPERPIXELS}, got {method!r}")
    kwargs = resolve_options(method, kwargs)
    lo, hi = x.min(), x.max()
    img = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    if method == "slic":
        seg = skimage.segmentation.slic(
            img, n_segments=kwargs["n_segments"], compactness=kwargs["compactness"],
            start_label=0, channel_axis=-1,
        )
    elif method == "quickshift":
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        seg = skimage.segmentation.quickshift(
            img[..., :3], kernel_size=kwargs["kernel_size"], max_dist=kwargs["max_dist"],
            ratio=kwargs["ratio"], rng=kwargs["seed"],
        )
    else:  # grid
        cells = kwargs["cells"]
        h, w = img.shape[:2]
        seg = (np.arange(h)[:, None] * cells // h) * cells + (np.arange(w)[None, :] * cells // w)
    return relabel(seg)


def make_segmenter(method: str, segments=None, options: Optional[dict] = None) -> Callable:
    """Validates a superpixel config now; returns `segment(x, override=None) -> (i32[H, W], M)`.

    Fixed `segments` (int [H, W]) are used for every image when given, else `method` with its
    `options` on each image; a call's `override` replaces both for one image.
    """
    options = dict(options or {})
    check_options(method, options)
    if segments is not None:
        relabel(segments)  # validates now

    def segment(x, override=None) -> tuple[np.ndarray, int]:
        return resolve_segments(x, segments if override is None else override, method, **options)

    return segment


def resolved_settings(factory: Callable, config: dict) -> dict:
    """Every setting of a superpixel method's `factory(**config)`, defaults included: the
    factory's keywords and the chosen superpixel method's options (LIME and KernelSHAP's
    `settings`, which `rexjax.methods.settings` reads)."""
    params = inspect.signature(factory).parameters.values()
    out = {p.name: p.default for p in params if p.default is not p.empty and p.kind != p.VAR_KEYWORD}
    named = {k: v for k, v in config.items() if k in out}
    out.update(named)
    out.update(resolve_options(out["superpixel"], {k: v for k, v in config.items() if k not in named}))
    return out
