"""Per-image explanation figure: input | responsibility heatmap | explanation overlay."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.0))
    axes[0].imshow(image)
    axes[0].set_title("input")
    im = axes[1].imshow(responsibility, cmap="magma")
    axes[1].set_title("responsibility")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.04)
    dimmed = (image.astype(np.float32) * np.where(mask[..., None], 1.0, 0.25)).astype(np.uint8)
    axes[2].imshow(dimmed)
    axes[2].contour(mask.astype(float), levels=[0.5], colors=["#00e5ff"], linewidths=1.2)
    axes[2].set_title(f"explanation ({100 * mask.mean():.1f}% of pixels)")
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
