"""Statistics and tables of `compare` and `frontier` (no I/O, no flags).

`Run` is one tool's explanation of one (image, seed) with its scores; medians come with a
percentile bootstrap 95 % interval over (image, seed) pairs, resampled with replacement.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Run:
    """One tool's explanation of one (image, seed), then its scores."""

    tool: str
    image: str
    seed: int
    target: int
    seconds: float
    map_s: float
    extract_s: float
    forward_images: int
    forward_images_map: int
    forward_images_extract: int
    responsibility: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    scores: dict = field(default_factory=dict)

    def row(self) -> dict:
        keep = ("tool", "image", "seed", "target", "seconds", "map_s", "extract_s", "forward_images",
                "forward_images_map", "forward_images_extract")
        return {**{k: getattr(self, k) for k in keep}, **self.scores}


def bootstrap_median(values, resamples: int, seed: int = 0) -> tuple[float, float, float]:
    """(median, 2.5 %, 97.5 %) of the median over bootstrap resamples of `values` (one value
    per (image, seed) pair, resampled with replacement)."""
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return (float("nan"),) * 3
    idx = np.random.default_rng(seed).integers(0, len(v), size=(resamples, len(v)))
    meds = np.median(v[idx], axis=1)
    return float(np.median(v)), float(np.percentile(meds, 2.5)), float(np.percentile(meds, 97.5))


def fmt(m: tuple[float, float, float], digits: int) -> str:
    return f"{m[0]:.{digits}f} ({m[1]:.{digits}f}-{m[2]:.{digits}f})"


SUMMARY_COLUMNS = (("seconds", "s per image", 1), ("forward_images", "forward images", 0), ("area", "area", 3),
                   ("insertion", "normalised insertion", 3), ("deletion", "normalised deletion", 3),
                   ("images_per_s", "images/s", 1))


def pair_ratios(runs: list[Run], key: str, num: str = "rex-xai", den: str = "rexjax") -> list[float]:
    """`key` of tool `num` / `key` of tool `den`, one ratio per (image, seed) both ran (pairs
    whose denominator is 0 are left out), in the order of `num`'s runs."""
    den_runs = {(r.image, r.seed): r.row()[key] for r in runs if r.tool == den}
    return [r.row()[key] / den_runs[(r.image, r.seed)] for r in runs
            if r.tool == num and den_runs.get((r.image, r.seed), 0) > 0]


def summary(runs: list[Run], resamples: int) -> str:
    """Markdown: per tool the medians (bootstrap 95 % intervals), sufficiency counts, per-pair ratios."""
    lines = ["| (medians over image x seed, 95 % bootstrap interval) | " + " | ".join(c[1] for c in SUMMARY_COLUMNS)
             + " | sufficient (torch) | sufficient (jax) |",
             "| --- " * (len(SUMMARY_COLUMNS) + 3) + "|"]
    by_tool = {t: [r for r in runs if r.tool == t] for t in ("rex-xai", "rexjax")}
    for tool, rs in by_tool.items():
        cells = [fmt(bootstrap_median([r.row()[c] for r in rs], resamples), d) for c, _, d in SUMMARY_COLUMNS]
        n = len(rs)
        lines.append(f"| {tool} | " + " | ".join(cells)
                     + f" | {sum(r.scores['sufficient_torch'] for r in rs)}/{n} | {sum(r.scores['sufficient_jax'] for r in rs)}/{n} |")
    out = "\n".join(lines) + "\n\nPer (image, seed) pair, rex-xai / rexjax, median (95 % bootstrap interval):\n\n"
    out += "| seconds | forward images | area | normalised insertion |\n| --- | --- | --- | --- |\n"
    out += "| " + " | ".join(fmt(bootstrap_median(pair_ratios(runs, k), resamples), 2)
                             for k in ("seconds", "forward_images", "area", "insertion")) + " |\n"
    return out


def per_image(runs: list[Run]) -> str:
    """Markdown: per image and tool, medians over seeds."""
    lines = ["| image | tool | class | s | forward images | area | insertion | deletion | sufficient (torch) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for image in sorted({r.image for r in runs}):
        for tool in ("rex-xai", "rexjax"):
            rs = [r for r in runs if r.image == image and r.tool == tool]
            med = lambda k: statistics.median(r.row()[k] for r in rs)
            lines.append(f"| {image} | {tool} | {rs[0].target} | {med('seconds'):.1f} | {med('forward_images'):.0f} | "
                         f"{med('area'):.3f} | {med('insertion'):.3f} | {med('deletion'):.3f} | "
                         f"{sum(r.scores['sufficient_torch'] for r in rs)}/{len(rs)} |")
    return "\n".join(lines) + "\n"
