"""Image -> model input space, on the host with PIL (the same library for every model).

Contract (EfficientNet-Lite, as ReX's own loader): RGB (L/LA/P/RGBA/CMYK converted, alpha
dropped, EXIF orientation ignored), the *whole* image resized to size x size with PIL
BICUBIC (no crop, aspect ratio not kept) to uint8, then `(x - mean) / std` with mean 127,
std 128 (values in about [-0.99, 1.0]). Other zoo models pass their own mean/std
(per channel, in 0..255 units) and resample filter.

The ReX tool's generic pipeline for ONNX models (`--norm N --means m1,.. --stds s1,..`) is
`Preprocess(size, mean=means, std=stds, norm=N, channels=C)`: `x / norm`, then per channel
`(x - mean) / std`, mean and std in the units of `x / norm` (the tool's), computed in float32
in the tool's order. `channels` picks the PIL mode the image is converted to: 1 "L"
(ITU-R 601 luma), 3 "RGB" (alpha dropped silently, where the tool warns), 4 "RGBA" (an image
without alpha gets alpha 255).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
from PIL import Image

from rexjax.io import open_image

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]
Stat = Union[float, Sequence[float]]

RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}
MODES = {1: "L", 3: "RGB", 4: "RGBA"}  # channels -> the PIL mode an image is converted to


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


def _mode(channels: int) -> str:
    if channels not in MODES:
        raise ValueError(f"channels must be 1 (grey), 3 (RGB) or 4 (RGBA), got {channels!r}")
    return MODES[channels]


def open_as(image: ImageLike, channels: int = 3) -> Image.Image:
    """Opens a path / PIL image / uint8 array [H,W] or [H,W,1|3|4] as a PIL image of
    `MODES[channels]`: "L" (grey), "RGB" (alpha dropped) or "RGBA" (alpha 255 when the
    image has none)."""
    mode = _mode(channels)
    if isinstance(image, (str, os.PathLike)):
        pil = open_image(image, mode)  # 16-bit scaled, bombs and unreadable files a ValueError
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
    return pil if pil.mode == mode else pil.convert(mode)


def _stat(name: str, value: Stat, channels: int) -> float | tuple[float, ...]:
    """A mean or std: one finite number for every channel, or one per channel."""
    one = np.ndim(value) == 0
    values = np.atleast_1d(np.asarray(value, np.float64))
    if values.ndim != 1 or not (one or len(values) == channels):
        raise ValueError(f"{name} must be one number or one per channel ({channels}), got {value!r}")
    if not np.all(np.isfinite(values)) or (name == "std" and np.any(values == 0)):
        raise ValueError(f"{name} must be finite{' and non-zero' if name == 'std' else ''}, got {value!r}")
    return float(values[0]) if one else tuple(float(v) for v in values)


def load_image(
    image: ImageLike,
    size: int | Sequence[int],
    mean: Stat = 127.0,
    std: Stat = 128.0,
    resample: str = "bicubic",
    channels: int = 3,
    norm: float = 1.0,
) -> np.ndarray:
    """Image -> f32[H, W, C] in model input space: converted to `channels` (1 "L", 3 "RGB",
    4 "RGBA"), whole image resized to `size` (int or (H, W)) with PIL `resample`, then
    `(x / norm - mean) / std` in float32 (norm 1: mean and std in 0..255 units)."""
    h, w = _size_hw(size)
    if resample not in RESAMPLE:
        raise ValueError(f"resample must be one of {sorted(RESAMPLE)}, got {resample!r}")
    pil = open_as(image, channels).resize((w, h), RESAMPLE[resample])  # PIL takes (width, height)
    x = np.asarray(pil, dtype=np.float32).reshape(h, w, channels) / np.float32(norm)  # exact for norm 1
    return ((x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)


def to_uint8(x: np.ndarray, mean: Stat = 127.0, std: Stat = 128.0, norm: float = 1.0) -> np.ndarray:
    """Inverse of `load_image`'s normalisation: f32[..., C] -> uint8[..., C] (rounded, clipped)."""
    x = (np.asarray(x, np.float32) * np.asarray(std, np.float32) + np.asarray(mean, np.float32)) * np.float32(norm)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Preprocess:
    """A model's preprocessing contract: `self(image) -> f32[H,W,C]` (C = `channels`),
    `inverse(x) -> uint8[H,W,3]` (RGB, for display).

    mean, std: one number or one per channel, in the units of `x / norm` (norm 1: 0..255).
    channels: 1, 3 or 4 (the PIL mode, see `MODES`). norm: the ReX tool's `--norm` (x is
    divided by it first; 1 leaves 0..255)."""

    size: tuple[int, int]
    mean: float | tuple[float, ...] = 127.0
    std: float | tuple[float, ...] = 128.0
    resample: str = "bicubic"
    channels: int = 3
    norm: float = 1.0

    def __post_init__(self):
        _mode(self.channels)
        object.__setattr__(self, "mean", _stat("mean", self.mean, self.channels))
        object.__setattr__(self, "std", _stat("std", self.std, self.channels))
        if not (isinstance(self.norm, (int, float, np.floating)) and math.isfinite(self.norm) and self.norm > 0):
            raise ValueError(f"norm must be a finite number > 0, got {self.norm!r}")

    def __call__(self, image: ImageLike) -> np.ndarray:
        return load_image(image, self.size, self.mean, self.std, self.resample, self.channels, self.norm)

    def describe(self) -> str:
        """One line, e.g. 'whole image -> 224x224 bicubic, (x - 127) / 128' (x in 0..255), or
        for the tool's pipeline on a grey model 'whole image -> 28x28 bicubic, grey (L),
        x / 255, (x - 0.5) / 0.25'."""
        fmt = lambda v: f"{v:g}" if np.isscalar(v) else "(" + ", ".join(f"{float(c):.4g}" for c in v) + ")"
        h, w = self.size
        mode = {1: "grey (L), ", 4: "RGBA, "}.get(self.channels, "")
        norm = f"x / {self.norm:g}, " if self.norm != 1 else ""
        return f"whole image -> {h}x{w} {self.resample}, {mode}{norm}(x - {fmt(self.mean)}) / {fmt(self.std)}"

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """f32[..., C] in model input space -> uint8[..., 3] RGB for display (grey repeated,
        an RGBA model's alpha dropped)."""
        u = to_uint8(x, self.mean, self.std, self.norm)
        return np.repeat(u, 3, -1) if self.channels == 1 else u[..., :3]
