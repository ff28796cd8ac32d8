"""Pieces shared by the explanation figures: dimmed composites, mask outlines, the
responsibility panel and the common finish (axes off, title, layout, PNG write, close)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def composite_image(image: np.ndarray, masks: Sequence[np.ndarray], dim: float = 0.3) -> np.ndarray:
    """uint8[H, W, 3] with the pixels outside every mask dimmed to `dim` of their value."""
    union = np.zeros(image.shape[:2], bool)
    for m in masks:
        union |= np.asarray(m, bool)
    return (image.astype(np.float32) * np.where(union[..., None], 1.0, dim)).astype(np.uint8)


def outline(ax, mask: np.ndarray, colour, linewidth: float) -> None:
    """Draws the boundary of `mask` (bool[H, W]) on `ax`; nothing for an empty or full mask."""
    if mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=linewidth)


def responsibility_panel(fig, ax, responsibility: np.ndarray) -> None:
    """`responsibility` f32[H, W] as a magma heatmap with its colour bar."""
    im = ax.imshow(responsibility, cmap="magma")
    ax.set_title("responsibility")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)


def finish_figure(fig, axes, path, title: str = "", **savefig_kwargs) -> None:
    """Hides the axes, adds `title` (if any) and writes the PNG (110 dpi) of `fig` (a
    `matplotlib.figure.Figure`: rendered with Agg, nothing to close). The title is also the
    PNG's `Title` text, so a reader can tell which result a file shows without decoding it."""
    for ax in axes:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
        savefig_kwargs.setdefault("metadata", {"Title": title})
    fig.tight_layout()
    fig.savefig(path, dpi=110, **savefig_kwargs)
