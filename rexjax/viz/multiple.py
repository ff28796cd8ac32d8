"""Composite figure of several explanations: each contoured in its own colour (ReX Fig. 11).

The reference's composite image (behaviour Sec. 9.2) marks every explanation's boundary in
its own colour over the image and greys out what no explanation covers; here the same is one
matplotlib panel next to the responsibility map, with a legend giving each explanation's
source, area and confidence.
"""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from rexjax.viz.figure import composite_image, finish_figure, outline, responsibility_panel

__all__ = ["composite_image", "part_colours", "save_multiple_figure"]


def part_colours(n: int) -> np.ndarray:
    """`n` distinct RGBA colours (tab10, then evenly spaced hsv)."""
    if n <= 10:
        return matplotlib.colormaps["tab10"](np.arange(n))
    return matplotlib.colormaps["hsv"](np.linspace(0, 1, n, endpoint=False))


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
    fig = Figure(figsize=(4.6 * panels, 4.6))
    axes = fig.subplots(1, panels)
    responsibility_panel(fig, axes[0], responsibility)
    colours = part_colours(max(len(parts), 1))
    axes[1].imshow(composite_image(image, [p.mask for p in parts]))
    handles = []
    for i, (p, c) in enumerate(zip(parts, colours)):
        outline(axes[1], p.mask, c, 1.8)
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
        outline(axes[2], contrastive_mask, "#00e5ff", 1.8)
        axes[2].set_title(f"contrastive ({100 * contrastive_mask.mean():.1f}% of pixels)")
    finish_figure(fig, axes, path, title, bbox_inches="tight")
