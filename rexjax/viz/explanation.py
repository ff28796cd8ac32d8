"""Per-image explanation figure: input | responsibility heatmap | explanation overlay."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rexjax.viz.figure import composite_image, finish_figure, outline, responsibility_panel


def display_image(model, x: np.ndarray) -> np.ndarray:
    """Model-input image `x[H, W, C]` -> uint8 RGB for display (min-max for unknown models)."""
    pre = getattr(model, "preprocessing", None)
    if pre is not None and hasattr(pre, "inverse"):
        return np.asarray(pre.inverse(np.asarray(x)))
    x = np.asarray(x, np.float32)
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, -1)
    lo, hi = x.min(), x.max()
    return ((x - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)[..., :3]


def save_explanation_figure(path, image: np.ndarray, responsibility: np.ndarray, mask: np.ndarray, title: str = "") -> None:
    """Writes a PNG with the input, the responsibility heatmap and the explanation overlay.

    image: uint8[H, W, 3]; responsibility: f32[H, W]; mask: bool[H, W].
    """
    fig = Figure(figsize=(11, 4.0))
    axes = fig.subplots(1, 3)
    axes[0].imshow(image)
    axes[0].set_title("input")
    responsibility_panel(fig, axes[1], responsibility)
    axes[2].imshow(composite_image(image, [mask], dim=0.25))
    outline(axes[2], mask, "#00e5ff", 1.2)
    axes[2].set_title(f"explanation ({100 * mask.mean():.1f}% of pixels)")
    finish_figure(fig, axes, path, title)
