"""Composite figure of several explanations: each contoured in its own colour (ReX Fig. 11).

The reference's composite image (behaviour Sec. 9.2) marks every explanation's boundary in
its own colour over the image and greys out what no explanation covers; here the same is one
matplotlib panel next to the responsibility map, with a legend giving each explanation's
source, area and confidence.
"""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402


def part_colours(n: int) -> np.ndarray:
    """`n` distinct RGBA colours (tab10, then evenly spaced hsv)."""
    if n <= 10:
        return plt.get_cmap("tab10")(np.arange(n))
    return plt.get_cmap("hsv")(np.linspace(0, 1, n, endpoint=False))


def composite_image(image: np.ndarray, masks: Sequence[np.ndarray], dim: float = 0.3) -> np.ndarray:
    """uint8[H, W, 3] with the pixels outside every mask dimmed to `dim` of their value."""
    union = np.zeros(image.shape[:2], bool)
    for m in masks:
        union |= np.asarray(m, bool)
    return (image.astype(np.float32) * np.where(union[..., None], 1.0, dim)).astype(np.uint8)


def save_multiple_figure(
    path,
    image: np.ndarray,
    responsibility: np.ndarray,
    parts: Sequence,
    title: str = "",
    contrastive_mask: Optional[np.ndarray] = None,
) -> None:
    """Writes a PNG: responsibility | all explanations contoured in their colours (| contrastive).

    image uint8[H, W, 3]; responsibility f32[H, W]; parts: `ExplanationPart`s (mask, area,
    confidence, source, centre); contrastive_mask: bool[H, W] or None (no third panel).
    """
    panels = 3 if contrastive_mask is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.6))
    im = axes[0].imshow(responsibility, cmap="magma")
    axes[0].set_title("responsibility")
    fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04)
    colours = part_colours(max(len(parts), 1))
    axes[1].imshow(composite_image(image, [p.mask for p in parts]))
    handles = []
    for i, (p, c) in enumerate(zip(parts, colours)):
        if p.mask.any() and not p.mask.all():
            axes[1].contour(p.mask.astype(float), levels=[0.5], colors=[c], linewidths=1.8)
        if p.centre is not None:
            axes[1].plot(p.centre[1], p.centre[0], "+", color=c, markersize=8)
        label = f"{i}: {p.source}, {100 * p.area:.1f}%, p={p.confidence:.3f}"
        handles.append(Line2D([0], [0], color=c, lw=2, label=label))
    if handles:
        axes[1].legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.02 - 0.07 * len(handles)),
                       fontsize=8, frameon=False)
    axes[1].set_title(f"{len(parts)} explanation(s)")
    if contrastive_mask is not None:
        axes[2].imshow(composite_image(image, [contrastive_mask]))
        if contrastive_mask.any() and not contrastive_mask.all():
            axes[2].contour(contrastive_mask.astype(float), levels=[0.5], colors=["#00e5ff"], linewidths=1.8)
        axes[2].set_title(f"contrastive ({100 * contrastive_mask.mean():.1f}% of pixels)")
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
