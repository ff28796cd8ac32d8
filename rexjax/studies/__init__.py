"""The papers' studies as runnable experiments (driver: `experiments/run.py`).

    STUDIES[name] -> module path; study(name) -> the module (see `runner` for what a study
    module declares); runner.run(config, study(config.study)) runs one.

    rex_compare, shape_vs_metrics   `compare`:       methods x models -> ReX paper Table 1
                                                     format, area box / violin plots, ins/del ranks
    convad_robustness               `convad`:        ReX (and LIME) under AD vs min/max/zero/mean
                                                     occlusion at confidence thresholds gamma:
                                                     rho-robustness K1 / K2, size and confidence
    concentration                   `concentration`: ReX's minimal pixel sets across models:
                                                     size ratios, Kruskal-Wallis, Friedman, post
                                                     hoc, mixed model, Dice / Hausdorff matrices
    extremal                        `extremal`:      extremal perturbations vs ReX's sufficient
                                                     explanations (area, Dice, sufficiency)

Beside them: `photobomb` (the ReX paper's photobombing set, `experiments/photobomb.py`),
`stats` (the statistics), `rowlog` (the resumable CSV), `tables`; the per-row PNGs and the
report page are `rexjax.report`'s.
"""

import importlib

STUDIES = {
    "rex_compare": "rexjax.studies.compare",
    "shape_vs_metrics": "rexjax.studies.compare",
    "convad_robustness": "rexjax.studies.convad",
    "concentration": "rexjax.studies.concentration",
    "extremal": "rexjax.studies.extremal",
}


def study(name: str):
    """The module of study `name` (ValueError naming the known ones)."""
    if name not in STUDIES:
        raise ValueError(f"study must be one of {sorted(STUDIES)}, got {name!r}")
    return importlib.import_module(STUDIES[name])
