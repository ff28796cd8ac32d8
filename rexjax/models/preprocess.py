"""Image -> model input space, on the host with PIL (the same library for every model).

Contract (EfficientNet-Lite, as ReX's own loader): RGB (L/LA/P/RGBA/CMYK converted, alpha
dropped, EXIF orientation ignored), the *whole* image resized to size x size with PIL
BICUBIC (no crop, aspect ratio not kept) to uint8, then `(x - mean) / std` with mean 127,
std 128 (values in about [-0.99, 1.0]). Other zoo models pass their own mean/std
(per channel, in 0..255 units) and resample filter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
from PIL import Image

from rexjax.io import open_image

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


def _size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an int or (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w


def open_rgb(image: ImageLike) -> Image.Image:
    """Opens a path / PIL image / uint8 array [H,W] or [H,W,3|4] as an RGB PIL image."""
    if isinstance(image, (str, os.PathLike)):
        pil = open_image(image)  # 16-bit scaled, bombs and unreadable files a ValueError
    elif isinstance(image, Image.Image):
        pil = image
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (1, 3, 4)):
            raise ValueError(
                f"image array must be uint8 [H,W] or [H,W,1|3|4], got {image.dtype} {image.shape}"
            )
        pil = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
    else:
        raise ValueError(f"image must be a path, a PIL image or a uint8 array, got {type(image).__name__}")
    return pil if pil.mode == "RGB" else pil.convert("RGB")


def load_image(
    image: ImageLike,
    size: int | Sequence[int],
    mean: float | Sequence[float] = 127.0,
    std: float | Sequence[float] = 128.0,
    resample: str = "bicubic",
) -> np.ndarray:
    """Image -> f32[H, W, 3] in model input space: RGB, whole image resized to `size`
    (int or (H, W)) with PIL `resample`, then `(x - mean) / std`."""
    h, w = _size_hw(size)
    if resample not in RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(RESAMPLE)}, got {resample!r}")
    pil = open_rgb(image).resize((w, h), RESAMPLE[resample])  # PIL takes (width, height)
    x = np.asarray(pil, dtype=np.float32)
    return ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def to_uint8(x: np.ndarray, mean: float | Sequence[float] = 127.0, std: float | Sequence[float] = 128.0) -> np.ndarray:
    """Inverse of `load_image`'s normalisation (for display): f32[..., 3] -> uint8[..., 3]."""
    x = np.asarray(x, np.float32) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Preprocess:
    """A model's preprocessing contract: `self(image) -> f32[H,W,3]`, `inverse(x) -> uint8`."""

    size: tuple[int, int]
    mean: float | tuple[float, ...] = 127.0
    std: float | tuple[float, ...] = 128.0
    resample: str = "bicubic"

    def __call__(self, image: ImageLike) -> np.ndarray:
        return load_image(image, self.size, self.mean, self.std, self.resample)

    def describe(self) -> str:
        """One line, e.g. 'whole image -> 224x224 bicubic, (x - 127) / 128' (x in 0..255)."""
        fmt = lambda v: f"{v:g}" if np.isscalar(v) else "(" + ", ".join(f"{float(c):.4g}" for c in v) + ")"
        h, w = self.size
        return f"whole image -> {h}x{w} {self.resample}, (x - {fmt(self.mean)}) / {fmt(self.std)}"

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return to_uint8(x, self.mean, self.std)
