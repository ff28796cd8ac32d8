"""1-D explanation figure (`rexjax explain --mode spectral|tabular`): the signal, one line per
channel, with the explanation's elements shaded | the responsibility of each element, shaded
the same way.

Element i is drawn at x = i and its shading covers [i - 0.5, i + 0.5), so a run of explained
elements [a, b) is one band from a - 0.5 to b - 0.5 (`mask_runs`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rexjax.viz.figure import finish_figure

SHADE = "#00b8d4"  # the explanation's band (cyan, as the image figures' outline)
SHADE_ALPHA = 0.3
MAX_LEGEND = 10  # channels named in the legend; more are drawn unnamed


def mask_runs(mask: np.ndarray) -> np.ndarray:
    """The runs of True in `mask` bool[N] -> int[R, 2]: (start, stop) of each, in order."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return edges.reshape(-1, 2)


def _shade(ax, runs: np.ndarray) -> None:
    """One band per run over the axes' full height (element i spans [i - 0.5, i + 0.5))."""
    ax.broken_barh([(a - 0.5, b - a) for a, b in runs], (0, 1), transform=ax.get_xaxis_transform(),
                   facecolor=SHADE, alpha=SHADE_ALPHA, linewidth=0)


def save_signal_figure(path, x: np.ndarray, responsibility: np.ndarray, mask: np.ndarray, title: str = "",
                       element: str = "element") -> Figure:
    """Writes a PNG of a 1-D explanation and returns its Figure (the axes give where each
    element is drawn: `fig.axes[0]` the signal, `fig.axes[1]` the responsibility).

    x: f32[N, C] the model's input; responsibility: f32[N]; mask: bool[N] (the explanation);
    element: what an element is called on the x axis ("feature" for tabular data).
    """
    x = np.asarray(x, np.float32)
    mask = np.asarray(mask, bool)
    n, channels = x.shape
    runs = mask_runs(mask)
    fig = Figure(figsize=(9, 5))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    index = np.arange(n)
    for c in range(channels):
        top.plot(index, x[:, c], linewidth=1, label=f"channel {c}" if c < MAX_LEGEND else None)
    _shade(top, runs)
    if 1 < channels:
        top.legend(fontsize=7, loc="upper right", ncols=min(channels, 5))
    top.set_title(f"input, explanation shaded ({int(mask.sum())} of {n} {element}s, {100 * mask.mean():.1f}%)",
                  fontsize=10)
    top.set_xlim(-0.5, n - 0.5)
    bottom.plot(index, np.asarray(responsibility, np.float32), drawstyle="steps-mid", color="#5b2a86", linewidth=1)
    _shade(bottom, runs)
    bottom.set_ylabel("responsibility")
    bottom.set_xlabel(element)
    finish_figure(fig, (), path, title)
    return fig
