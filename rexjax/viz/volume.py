"""3-D explanation figure (`rexjax explain --mode voxel`): three orthogonal slices of the
volume through one point, the explanation overlaid (outside it dimmed, its boundary
outlined) | the responsibility on the same three slices.

The point is the explanation's most responsible voxel: the responsibility's argmax among the
voxels of the mask (the first in C order when tied), so that every slice cuts the
explanation (the map's own argmax can lie outside it); the whole map's argmax for an empty
mask. The volume is shown as the mean of its channels, min-max scaled over the whole
volume (so the three slices share one grey scale); the responsibility panels share one colour
scale, that of the whole map.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rexjax.viz.figure import composite_image, finish_figure, outline


def slice_point(responsibility: np.ndarray, mask: np.ndarray) -> tuple[int, int, int]:
    """Where the slices cross, for `responsibility` f32[D, H, W] and `mask` bool[D, H, W]: the
    argmax of the responsibility over the mask's voxels (over all voxels if the mask is
    empty), the first in C order when tied."""
    r = np.asarray(responsibility, np.float64)
    mask = np.asarray(mask, bool)
    candidates = np.where(mask, r, -np.inf) if mask.any() else r
    return tuple(int(i) for i in np.unravel_index(np.argmax(candidates), r.shape))


def orthogonal_slices(a: np.ndarray, point) -> list[tuple[str, np.ndarray]]:
    """The three slices of `a[D, H, W, ...]` through `point` (d, h, w), with their labels:
    a[d] (H x W), a[:, h] (D x W), a[:, :, w] (D x H)."""
    d, h, w = point
    return [(f"[{d}, :, :]", a[d]), (f"[:, {h}, :]", a[:, h]), (f"[:, :, {w}]", a[:, :, w])]


def _grey(volume: np.ndarray) -> np.ndarray:
    """f32[D, H, W, C] -> uint8[D, H, W, 3]: the channel mean, min-max scaled over the volume."""
    g = np.asarray(volume, np.float32).mean(-1)
    lo, hi = float(g.min()), float(g.max())
    g = np.rint((g - lo) / max(hi - lo, 1e-12) * 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, -1)


def save_volume_figure(path, volume: np.ndarray, responsibility: np.ndarray, mask: np.ndarray,
                       title: str = "") -> Figure:
    """Writes a PNG of a 3-D explanation and returns its Figure: `fig.axes[0:3]` the explanation
    on the slices `orthogonal_slices(..., slice_point(responsibility, mask))`, `fig.axes[3:6]` the
    responsibility on them, then the colour bar.

    volume: f32[D, H, W, C] the model's input; responsibility: f32[D, H, W]; mask: bool[D, H, W].
    """
    r = np.asarray(responsibility, np.float32)
    mask = np.asarray(mask, bool)
    point = slice_point(r, mask)
    fig = Figure(figsize=(10, 6.6))
    axes = fig.subplots(2, 3)
    grey = orthogonal_slices(_grey(volume), point)
    masks = orthogonal_slices(mask, point)
    for ax, (label, image), (_, m) in zip(axes[0], grey, masks):
        ax.imshow(composite_image(image, [m], dim=0.25), interpolation="nearest")
        outline(ax, m, "#00e5ff", 1.2)
        ax.set_title(f"explanation {label}: {100 * m.mean():.0f}%", fontsize=9)
    for ax, (label, values) in zip(axes[1], orthogonal_slices(r, point)):
        shown = ax.imshow(values, cmap="magma", vmin=float(r.min()), vmax=float(r.max()), interpolation="nearest")
        ax.set_title(f"responsibility {label}", fontsize=9)
    fig.colorbar(shown, ax=axes[1, 2], fraction=0.046, pad=0.04)
    finish_figure(fig, axes.ravel(), path, title)
    return fig
