"""Study `concentration` (the minimal pixel sets paper): does the architecture change how
small a sufficient pixel set can be?

For every model on the same images and seed, each method of `config.methods` (ReX: its
minimal sufficient explanation, the record's mask) gives a pixel set per image; the row
records its size ratio (`mps_area`, pixels / H W), whether the model's top-1 is the
image's ground-truth label (`correct`; empty without labels, e.g. the plain folder layout)
and the model's architecture family (`architecture`: `config.architectures` maps model ->
family, else the name without its size suffix, e.g. efficientnet_lite0 -> efficientnet_lite).

Analysis (`rexjax.studies.stats`), per method, as the paper: size ratio per model (mean,
std, median, and correct vs incorrect), Kruskal-Wallis across architectures with Dunn's
post hoc test; within each architecture, Friedman across its models (images as blocks; an
architecture of two models gets the paired Wilcoxon test instead, one model none) with
Bonferroni-corrected Wilcoxon post hoc tests; the mixed linear model
size ~ correct + C(model) + (1 | image) (the model a fixed effect, so the models' different
accuracies do not pass for an effect of correctness); Dice and Hausdorff matrices (means
over images, masks compared at the larger model's input size) across architectures between
the best model of each (highest accuracy; without labels the majority vote of the models is
the proxy for correctness, as the paper on its unlabelled data) and within each
architecture between its models, each on the images all compared models classify correctly
and, separately, incorrectly; and a violin plot of the size ratio per model.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Sequence

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


def overlap_matrices(out: Path, method: str, models: list[str], images: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean Dice and Hausdorff (finite ones) over `images` for every pair of models."""
    n = len(models)
    dice, haus = np.eye(n), np.zeros((n, n))
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


def correctness(rows) -> dict[tuple[str, str], bool]:
    """{(model, image): correct}: the ground-truth label where the rows have one, else the
    majority vote of the models on that image (the paper's proxy on unlabelled data; a tie
    goes to the target seen first)."""
    out, votes = {}, {}
    for r in rows:
        votes.setdefault(r["image"], []).append(str(r["target"]))
    for r in rows:
        if r.get("correct") not in ("", None):
            out[(r["model"], r["image"])] = str(r["correct"]) == "1"
        else:
            v = votes[r["image"]]
            out[(r["model"], r["image"])] = str(r["target"]) == max(dict.fromkeys(v), key=v.count)
    return out


def families(models: Sequence[str], config) -> dict[str, list[str]]:
    """{architecture: its models, in the given order}."""
    out: dict[str, list[str]] = {}
    for m in models:
        out.setdefault(architecture(m, config), []).append(m)
    return out


def overlap_groups(right: dict[tuple[str, str], bool], models: list[str], config) -> list[tuple[str, list[str]]]:
    """[(title, models)]: the best model of each architecture (highest accuracy by `right`,
    `correctness`'s answer; first on ties) across architectures, then each architecture's
    own models (>= 2)."""
    by_family = families(models, config)
    accuracy = {m: np.mean([ok for (mm, _), ok in right.items() if mm == m] or [0.0]) for m in models}
    groups = []
    if len(by_family) > 1:
        groups.append(("best model per architecture", [max(ms, key=lambda m: accuracy[m]) for ms in by_family.values()]))
    groups += [(f"architecture {family}", ms) for family, ms in by_family.items() if len(ms) > 1]
    return groups


def within_architecture_tests(rs, models: list[str], config) -> tuple[list[list], list[list]]:
    """(test rows, post hoc rows): per architecture, Friedman across its models with the
    images every one of them explained as blocks (two models: Wilcoxon), and the
    Bonferroni-corrected pairwise Wilcoxon tests."""
    tests, posthoc = [], []
    for family, ms in families(models, config).items():
        if len(ms) < 2:
            continue
        images = [im for im in dict.fromkeys(r["image"] for r in rs)
                  if all(values(rs, "mps_area", model=m, image=im) for m in ms)]
        blocks = np.asarray([[values(rs, "mps_area", model=m, image=im)[0] for m in ms] for im in images], float)
        blocks = blocks.reshape(len(images), len(ms))
        pairs = stats.pairwise_wilcoxon(blocks, ms)
        if len(ms) >= 3:
            tests.append(_test_row(f"Friedman within {family} ({', '.join(ms)}; images as blocks)", stats.friedman(blocks)))
        else:
            (_, _, w, p), = pairs
            tests.append([f"Wilcoxon within {family} ({', '.join(ms)}; two models)", w, p, f"{len(images)} images"])
        posthoc += [[a, b, w, p] for a, b, w, p in pairs]
    return tests, posthoc


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
        labelled = [r for r in rs if r["correct"] not in ("", None) and values([r], "mps_area")]
        within, posthoc = within_architecture_tests(rs, models, config)
        tests = [
            _test_row("Kruskal-Wallis across architectures", stats.kruskal(arch_groups)),
            *within,
            _test_row("mixed model size ~ correct + C(model), random intercept per image: coefficient of correct",
                      stats.mixed_model([float(r["mps_area"]) for r in labelled], [r["correct"] == "1" for r in labelled],
                                        [r["image"] for r in labelled], [r["model"] for r in labelled])),
        ]
        sections.append(Section(f"{method}: tests", markdown_table(["test", "statistic", "p", "note"], tests)))
        dunn = stats.dunn(arch_groups)
        text = "Dunn's test: scikit-posthocs not installed (pip install rexjax[stats])." if dunn is None and len(arch_groups) > 1 else ""
        if dunn:
            posthoc += [[f"{a} (architecture)", f"{b} (architecture)", "Dunn", p] for (a, b), p in dunn.items()]
        sections.append(Section(f"{method}: post hoc tests (Bonferroni-corrected p)",
                                markdown_table(["a", "b", "W (Wilcoxon) / test", "p"], posthoc), text=text))
        if config.save_maps and len(models) > 1:
            right = correctness(rs)
            for title, group in overlap_groups(right, models, config):
                for verdict, wanted in (("correctly", True), ("incorrectly", False)):
                    images = [im for im in dict.fromkeys(r["image"] for r in rs)
                              if all(right.get((m, im)) is wanted for m in group)]
                    dice, haus = overlap_matrices(out, method, group, images)
                    where = f"{title}, the {len(images)} images all of them classify {verdict}"
                    sections.append(Section(f"{method}: Dice between pixel sets, {where} (mean over images)",
                                            markdown_table(["model"] + group, [[m] + list(map(float, dice[i])) for i, m in enumerate(group)])))
                    sections.append(Section(f"{method}: Hausdorff distance (pixels) between pixel sets, {where}",
                                            markdown_table(["model"] + group, [[m] + list(map(float, haus[i])) for i, m in enumerate(group)])))
    return sections
