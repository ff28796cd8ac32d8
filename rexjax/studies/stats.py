"""The MPS paper's statistics on per-image sizes, from maintained packages.

    kruskal(groups)                  Kruskal-Wallis H across independent groups (scipy.stats)
    friedman(blocks)                 Friedman chi^2 within blocks: one row per image, one
                                     column per model (scipy.stats; >= 3 models)
    pairwise_wilcoxon(blocks, names) paired post hoc tests, Bonferroni-corrected p values
                                     (scipy.stats.wilcoxon; p * number of pairs, capped at 1)
    dunn(groups)                     Dunn's post hoc test after Kruskal-Wallis, Bonferroni
                                     (scikit-posthocs, optional: None without it)
    mixed_model(sizes, correct, images, models)   size ~ correct + C(model) with a random
                                     intercept per image (statsmodels MixedLM, optional)

Each returns a `Test` (statistic, p, note) or a table; a test that cannot run on the data
(too few groups or images, no variation) returns Test(None, None, why) instead of raising,
so a small run still writes its report.
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, NamedTuple, Optional, Sequence

import numpy as np


class Test(NamedTuple):
    statistic: Optional[float]
    p: Optional[float]
    note: str = ""


def _finite(v) -> Optional[float]:
    v = float(v)
    return v if math.isfinite(v) else None


def kruskal(groups: Mapping[str, Sequence[float]]) -> Test:
    """Kruskal-Wallis H test across the groups (each a list of sizes)."""
    from scipy import stats

    groups = {k: list(v) for k, v in groups.items() if len(v)}
    if len(groups) < 2:
        return Test(None, None, f"needs >= 2 groups with data, got {len(groups)}")
    values = np.concatenate([np.asarray(v, float) for v in groups.values()])
    if np.ptp(values) == 0:
        return Test(None, None, "all values are equal")
    r = stats.kruskal(*groups.values())
    return Test(_finite(r.statistic), _finite(r.pvalue), f"{len(groups)} groups, n = {len(values)}")


def friedman(blocks: np.ndarray) -> Test:
    """Friedman test: blocks f64[n_images, n_models] (each row one image under every model)."""
    from scipy import stats

    blocks = np.asarray(blocks, float)
    if blocks.ndim != 2 or blocks.shape[1] < 3:
        return Test(None, None, f"needs >= 3 models, got {blocks.shape[1] if blocks.ndim == 2 else 0}")
    if blocks.shape[0] < 2:
        return Test(None, None, f"needs >= 2 images, got {blocks.shape[0]}")
    r = stats.friedmanchisquare(*blocks.T)
    return Test(_finite(r.statistic), _finite(r.pvalue), f"{blocks.shape[1]} models, {blocks.shape[0]} images")


def pairwise_wilcoxon(blocks: np.ndarray, names: Sequence[str]) -> list[tuple[str, str, Optional[float], Optional[float]]]:
    """[(a, b, W, Bonferroni p)] for every pair of columns of blocks f64[n_images, n_models]
    (Wilcoxon signed-rank on the paired differences; None where all differences are 0)."""
    from scipy import stats

    blocks = np.asarray(blocks, float)
    pairs = list(itertools.combinations(range(len(names)), 2))
    out = []
    for a, b in pairs:
        d = blocks[:, a] - blocks[:, b]
        if not np.any(d != 0):
            out.append((names[a], names[b], None, None))
            continue
        r = stats.wilcoxon(blocks[:, a], blocks[:, b])
        out.append((names[a], names[b], _finite(r.statistic), min(1.0, float(r.pvalue) * len(pairs))))
    return out


def dunn(groups: Mapping[str, Sequence[float]]):
    """Dunn's test (Bonferroni) as {(a, b): p}, or None without scikit-posthocs / < 2 groups."""
    try:
        import scikit_posthocs as sp
    except ImportError:
        return None
    groups = {k: list(v) for k, v in groups.items() if len(v)}
    if len(groups) < 2:
        return None
    names = list(groups)
    table = np.asarray(sp.posthoc_dunn([groups[n] for n in names], p_adjust="bonferroni"))
    return {(a, b): float(table[i, j]) for (i, a), (j, b) in itertools.combinations(enumerate(names), 2)}


def mixed_model(sizes: Sequence[float], correct: Sequence[bool], images: Sequence[str],
                models: Optional[Sequence[str]] = None) -> Test:
    """size ~ correct [+ C(model)] + (1 | image) (statsmodels MixedLM, REML): the `correct`
    coefficient (statistic) and its p value. With `models` (one name per row) the model is a
    fixed effect, so models' different accuracies cannot pass for an effect of correctness
    (the confound the MPS paper controls for). Test(None, None, why) without statsmodels,
    without both correct and incorrect classifications, or when the fit fails."""
    try:
        import statsmodels.formula.api as smf
    except ImportError:
        return Test(None, None, "statsmodels not installed (pip install rexjax[stats])")
    correct = [bool(c) for c in correct]
    if len(set(correct)) < 2:
        return Test(None, None, "needs both correct and incorrect classifications (ground-truth labels)")
    import pandas as pd

    frame = pd.DataFrame({"size": np.asarray(sizes, float), "correct": np.asarray(correct, float),
                          "image": list(images)})
    formula = "size ~ correct"
    if models is not None and len(set(models)) > 1:
        frame["model"] = list(models)
        formula += " + C(model)"
    import warnings

    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    try:
        with warnings.catch_warnings():  # statsmodels retries optimisers noisily; the note says whether it converged
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit = smf.mixedlm(formula, frame, groups=frame["image"]).fit()
    except (ValueError, np.linalg.LinAlgError) as e:
        return Test(None, None, f"fit failed: {e}")
    note = f"n = {len(frame)}" + (", model as a fixed effect" if "model" in frame else "")
    return Test(_finite(fit.params["correct"]), _finite(fit.pvalues["correct"]),
                note + ("" if fit.converged else ", the optimiser did not converge"))
