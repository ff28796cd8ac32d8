"""Study `concentration` (the minimal pixel sets paper): does the architecture change how
small a sufficient pixel set can be?

For every model on the same images and seed, each method of `config.methods` (ReX: its
minimal sufficient explanation, the record's mask) gives a pixel set per image; the row
records its size ratio (`mps_area`, pixels / H W), whether the model's top-1 is the
image's ground-truth label (`correct`; empty without labels, e.g. the plain folder layout)
and the model's architecture family (`architecture`: `config.architectures` maps model ->
family, else the name without its size suffix, e.g. efficientnet_lite0 -> efficientnet_lite).

Analysis (`rexjax.studies.stats`), per method: size ratio per model (mean, std, median,
and correct vs incorrect), Kruskal-Wallis across architectures with Dunn's post hoc test,
Friedman across models within images with Bonferroni-corrected Wilcoxon post hoc tests,
the mixed linear model size ~ correct + (1 | image), Dice and Hausdorff matrices between
the models' pixel sets (means over images, masks compared at the larger model's input
size), and a violin plot of the size ratio per model.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np

from rexjax import metrics
from rexjax.report import plots
from rexjax.report.html import markdown_table
from rexjax.report.maps import own_mask, paths, read_mask, slug
from rexjax.studies import compare, stats
from rexjax.studies.runner import Section
from rexjax.studies.tables import values

EXTRA_COLUMNS = ("mps_area", "correct", "architecture")

variants = compare.variants


def architecture(model: str, config) -> str:
    """The model's family: `config.architectures` ('model=family,...') or the name without
    its trailing size digits / letter ('resnet50' -> 'resnet', 'efficientnet_lite0' ->
    'efficientnet_lite')."""
    table = dict(item.split("=", 1) for item in str(config.architectures or "").split(",") if "=" in item)
    name = model.split(":")[-1]
    return table.get(model, re.sub(r"(_?\d+[a-z]?|_[a-z])$", "", name) or name)


def columns(ctx, row, x, measured) -> dict:
    mask = own_mask(measured)
    label = ctx.sample.label
    return {"mps_area": float(mask.mean()), "correct": None if label is None else int(label == row["target"]),
            "architecture": architecture(row["model"], ctx.config)}


def overlap_matrices(out: Path, rows, method: str, models: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean Dice and Hausdorff (finite ones) over images for every pair of models."""
    n = len(models)
    dice, haus = np.eye(n), np.zeros((n, n))
    images = list(dict.fromkeys(r["image"] for r in rows))
    for a, b in itertools.combinations(range(n), 2):
        ds, hs = [], []
        for image in images:
            pa, pb = (paths(out, models[k], method, image)["mask"] for k in (a, b))
            if not (pa.is_file() and pb.is_file()):
                continue
            ma, mb = read_mask(pa), read_mask(pb)
            hw = max(ma.shape, mb.shape)
            ma, mb = read_mask(pa, hw), read_mask(pb, hw)
            ds.append(metrics.dice(ma, mb))
            h = metrics.hausdorff(ma, mb)
            if np.isfinite(h):
                hs.append(h)
        dice[a, b] = dice[b, a] = np.mean(ds) if ds else np.nan
        haus[a, b] = haus[b, a] = np.mean(hs) if hs else np.nan
    return dice, haus


def _test_row(name: str, t: stats.Test) -> list:
    return [name, t.statistic, t.p, t.note]


def analyse(rows, out, config) -> list[Section]:
    out = Path(out)
    sections = []
    models = list(dict.fromkeys(r["model"] for r in rows))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        table = []
        for m in models:
            a = values(rs, "mps_area", model=m)
            ok, bad = values(rs, "mps_area", model=m, correct=1), values(rs, "mps_area", model=m, correct=0)
            table.append([m, architecture(m, config), len(a), float(np.mean(a)) if a else None,
                          float(np.std(a, ddof=1)) if len(a) > 1 else None, float(np.median(a)) if a else None,
                          float(np.mean(ok)) if ok else None, float(np.mean(bad)) if bad else None])
        png = plots.distributions(out / f"mps_violin_{slug(method)}.png", {m: values(rs, "mps_area", model=m) for m in models},
                                  kind="violin", ylabel="size ratio", title=f"{method}: minimal pixel set size")
        sections.append(Section(f"{method}: size ratio of the minimal pixel set per model", markdown_table(
            ["model", "architecture", "n", "mean", "std", "median", "mean (correct)", "mean (incorrect)"], table),
            (png.name,)))

        arch_groups: dict[str, list[float]] = {}
        for r in rs:
            v = values([r], "mps_area")
            if v:
                arch_groups.setdefault(r["architecture"], []).extend(v)
        images = [im for im in dict.fromkeys(r["image"] for r in rs)
                  if all(values(rs, "mps_area", model=m, image=im) for m in models)]
        blocks = np.asarray([[values(rs, "mps_area", model=m, image=im)[0] for m in models] for im in images], float)
        labelled = [r for r in rs if r["correct"] not in ("", None) and values([r], "mps_area")]
        tests = [
            _test_row("Kruskal-Wallis across architectures", stats.kruskal(arch_groups)),
            _test_row("Friedman across models (within images)", stats.friedman(blocks.reshape(len(images), len(models)))),
            _test_row("mixed model size ~ correct, random intercept per image: coefficient of correct",
                      stats.mixed_model([float(r["mps_area"]) for r in labelled], [r["correct"] == "1" for r in labelled],
                                        [r["image"] for r in labelled])),
        ]
        sections.append(Section(f"{method}: tests", markdown_table(["test", "statistic", "p", "note"], tests)))
        posthoc = [[a, b, w, p] for a, b, w, p in stats.pairwise_wilcoxon(blocks.reshape(len(images), len(models)), models)]
        dunn = stats.dunn(arch_groups)
        text = "Dunn's test: scikit-posthocs not installed (pip install rexjax[stats])." if dunn is None and len(arch_groups) > 1 else ""
        if dunn:
            posthoc += [[f"{a} (architecture)", f"{b} (architecture)", "Dunn", p] for (a, b), p in dunn.items()]
        sections.append(Section(f"{method}: post hoc tests (Bonferroni-corrected p)",
                                markdown_table(["a", "b", "W (Wilcoxon) / test", "p"], posthoc), text=text))
        if config.save_maps and len(models) > 1:
            dice, haus = overlap_matrices(out, rs, method, models)
            sections.append(Section(f"{method}: Dice between models' pixel sets (mean over images)",
                                    markdown_table(["model"] + models, [[m] + list(map(float, dice[i])) for i, m in enumerate(models)])))
            sections.append(Section(f"{method}: Hausdorff distance (pixels) between models' pixel sets",
                                    markdown_table(["model"] + models, [[m] + list(map(float, haus[i])) for i, m in enumerate(models)])))
    return sections
