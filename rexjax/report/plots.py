"""Study plots as PNG files (matplotlib's object-oriented API, no backend switch): one
distribution per group, or lines over x.

    distributions(path, groups, kind="box"|"violin", ylabel, title)   {name: [values]}
    lines(path, x, series, errors, xlabel, ylabel, title)              {name: [y]} (+ [err])
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence


def _figure(width: float):
    """A `width` x 3.4 inch Figure and its one Axes, owned by the caller (no pyplot state:
    `Figure.savefig` renders with Agg whatever the process's backend)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 3.4))
    return fig, fig.subplots()


def distributions(path, groups: Mapping[str, Sequence[float]], *, kind: str = "box", ylabel: str = "",
                  title: str = "") -> Path:
    """Box or violin plot of each group's values (groups with no values are left out)."""
    if kind not in ("box", "violin"):
        raise ValueError(f"kind must be 'box' or 'violin', got {kind!r}")
    groups = {k: list(v) for k, v in groups.items() if len(v)}
    fig, ax = _figure(max(4.0, 0.9 * len(groups) + 1.5))
    names = list(groups)
    if names:
        if kind == "box":
            ax.boxplot([groups[n] for n in names], showmeans=True)
        else:
            ax.violinplot([groups[n] for n in names], showmeans=True)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)


def lines(path, x: Sequence[float], series: Mapping[str, Sequence[float]], *,
          errors: Optional[Mapping[str, Sequence[float]]] = None, xlabel: str = "", ylabel: str = "",
          title: str = "") -> Path:
    """One line (with error bars when given) per series over x."""
    fig, ax = _figure(5.0)
    for name, ys in series.items():
        ax.errorbar(x, ys, yerr=None if errors is None else errors.get(name), marker="o", capsize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)
