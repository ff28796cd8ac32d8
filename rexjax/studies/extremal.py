"""Study `extremal`: an optimisation-based minimal mask (extremal perturbations, Fong et al.
2019, `rexjax.saliency.extremal`) against ReX's minimal sufficient explanations - the
gradient-based answer to the question the minimal pixel sets paper asks without gradients.

Every method of `config.methods` (default rex, extremal) runs on every image and model; its
own binary explanation (ReX's sufficient explanation, the extremal region of `area` H W
pixels; the area extraction of the map for other methods) is checked on its own: the row
records its area (`own_area`), the target probability with only it visible through the
study's mask_mode (`own_confidence`) and whether the model's top-1 is then still the
target (`own_sufficient`, 1 / 0).

Analysis per model: mean own area, sufficiency rate and confidence per method, and the Dice
and Hausdorff distance between every two methods' explanations (means over images).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from rexjax import metrics
from rexjax.report.html import markdown_table
from rexjax.report.maps import own_mask, paths, read_mask
from rexjax.studies import compare
from rexjax.studies.runner import Section, by_model
from rexjax.studies.tables import mean_sem, values

EXTRA_COLUMNS = ("own_area", "own_confidence", "own_sufficient")

variants = compare.variants


def columns(ctx, row, x, measured) -> dict:
    mask = own_mask(measured)
    probs = np.asarray(ctx.classifier.masked(row["mask_mode"])(x, jnp.asarray(mask, jnp.float32)[None])[0])
    return {"own_area": float(mask.mean()), "own_confidence": float(probs[row["target"]]),
            "own_sufficient": int(probs.argmax() == row["target"])}


def analyse(rows, out, config) -> list[Section]:
    out = Path(out)
    sections = []
    for model, rs, methods in by_model(rows):
        table = [[m, len(values(rs, "own_area", method=m)), mean_sem(values(rs, "own_area", method=m))[0],
                  mean_sem(values(rs, "own_sufficient", method=m))[0], mean_sem(values(rs, "own_confidence", method=m))[0]]
                 for m in methods]
        sections.append(Section(f"{model}: each method's own explanation", markdown_table(
            ["method", "n", "area", "sufficient (rate)", "confidence"], table)))
        pairs = []
        for a, b in itertools.combinations(methods, 2):
            ds, hs = [], []
            for image in dict.fromkeys(r["image"] for r in rs):
                pa, pb = paths(out, model, a, image)["mask"], paths(out, model, b, image)["mask"]
                if pa.is_file() and pb.is_file():
                    ma, mb = read_mask(pa), read_mask(pb)
                    ds.append(metrics.dice(ma, mb))
                    h = metrics.hausdorff(ma, mb)
                    if np.isfinite(h):
                        hs.append(h)
            pairs.append([a, b, len(ds), mean_sem(ds)[0], mean_sem(hs)[0]])
        if pairs:
            sections.append(Section(f"{model}: agreement between the methods' explanations (means over images)",
                                    markdown_table(["a", "b", "images", "Dice", "Hausdorff (pixels)"], pairs)))
    return sections
