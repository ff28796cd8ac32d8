"""The studies' analyses follow the papers' protocols (signs, test blocks, covariates, chance
levels), checked on synthetic rows whose answer is known."""

import math

import ml_collections
import numpy as np
import pytest
from scipy import stats as scipy_stats

from rexjax import evaluation
from rexjax.studies import compare, concentration, convad
from rexjax.studies import stats


def _convad_rows():
    """AD explanations cover 30 % of the image, `min` 10 % (and is the more robust one by
    rho K1), `max` 5 % (less robust): Table 1 compares AD with `min`."""
    rows = []
    for image in ("a", "b"):
        for occlusion, area, rho in (("ad", 0.30, 0.5), ("min", 0.10, 0.9), ("max", 0.05, 0.2)):
            rows.append({"model": "m", "image": image, "method": f"rex[{occlusion},g=0]", "occlusion": occlusion,
                         "gamma": "0", "expl_area": str(area), "expl_confidence": "0.5", "rho_k1": str(rho),
                         "rho_k2": str(rho)})
    return rows


def test_convad_size_difference_has_the_papers_sign(tmp_path):
    """ConvAD Table 1: AD area minus the best masking value's, positive = AD larger (the sign
    was once reversed), and the best value is chosen by rho K1, not by size."""
    config = ml_collections.ConfigDict({"gammas": "0", "occlusions": "ad,min,max"})
    sections = convad.analyse(_convad_rows(), tmp_path, config)
    (table,) = [s for s in sections if "size difference" in s.title]
    assert "AD minus the best masking value" in table.title and "positive = AD larger" in table.title
    diff_line = next(line for line in table.table.splitlines() if line.startswith("| size difference"))
    best_line = next(line for line in table.table.splitlines() if line.startswith("| best masking value"))
    assert float(diff_line.split("|")[2]) == pytest.approx(20.0)  # 100 x (0.30 - 0.10)
    assert best_line.split("|")[2].strip() == "min"


def _size_rows():
    """Two architectures of three models each; within each architecture the models' sizes
    differ consistently over images (rank 0 < 1 < 2), and architecture b is 5x larger."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        base = 0.05 + 0.01 * rng.random()
        for family, scale in (("a", 1.0), ("b", 5.0)):
            for k in range(3):
                rows.append({"model": f"{family}_net{k}", "image": f"im{i}", "method": "rex", "target": "1",
                             "mps_area": str(scale * (base + 0.002 * k + 0.0005 * rng.random())),
                             "correct": "", "architecture": f"{family}_net"})
    return rows


def test_friedman_runs_within_each_architecture(tmp_path):
    """The MPS paper tests models within an architecture (Friedman, images as blocks); one
    Friedman across all models mixes the architecture effect into it."""
    rows = _size_rows()
    config = ml_collections.ConfigDict({"architectures": None, "save_maps": False})
    sections = concentration.analyse(rows, tmp_path, config)
    (tests,) = [s for s in sections if s.title == "rex: tests"]
    lines = tests.table.splitlines()
    within = [line for line in lines if line.startswith("| Friedman within")]
    assert len(within) == 2 and not any("across models" in line for line in lines)
    for family, line in zip(("a_net", "b_net"), within):
        blocks = np.array([[float(r["mps_area"]) for r in rows if r["image"] == f"im{i}" and r["architecture"] == family]
                           for i in range(8)])
        expected = scipy_stats.friedmanchisquare(*blocks.T)
        assert family in line
        assert float(line.split("|")[2]) == pytest.approx(expected.statistic, rel=1e-3)
    (posthoc,) = [s for s in sections if s.title.startswith("rex: post hoc")]
    pairs = [line for line in posthoc.table.splitlines()
             if line.startswith(("| a_net", "| b_net")) and "(architecture)" not in line]  # Dunn's rows apart
    # Wilcoxon pairs only within an architecture: 3 + 3, never a_net* against b_net*
    assert len(pairs) == 6 and not any(("a_net" in p and "b_net" in p) for p in pairs)


def test_mixed_model_controls_for_the_model():
    """Model A is accurate with small pixel sets, model B inaccurate with large ones, and
    within each model correctness changes nothing: without the model term the coefficient
    of `correct` is the models' difference (about -0.1); with it, about 0."""
    rng = np.random.default_rng(1)
    sizes, correct, images, models = [], [], [], []
    for i in range(40):
        offset = 0.01 * rng.standard_normal()
        for model, size, accuracy in (("A", 0.05, 0.9), ("B", 0.15, 0.2)):
            sizes.append(size + offset + 0.002 * rng.standard_normal())
            correct.append(rng.random() < accuracy)
            images.append(f"im{i}")
            models.append(model)
    confounded = stats.mixed_model(sizes, correct, images)
    controlled = stats.mixed_model(sizes, correct, images, models)
    assert confounded.statistic < -0.05
    assert abs(controlled.statistic) < 0.005 and "model as a fixed effect" in controlled.note


def test_overlap_compares_the_best_model_per_architecture_on_agreed_images():
    """Dice / Hausdorff across architectures use each architecture's most accurate model, on
    the images all of them classify correctly (or all incorrectly); without labels the
    majority vote of the models stands in for the label."""
    rows = []
    truth = {"a_net0": [1, 1, 0, 1], "a_net1": [1, 0, 0, 0], "b_net0": [0, 0, 0, 1], "b_net1": [1, 1, 0, 0]}
    for model, oks in truth.items():
        for i, ok in enumerate(oks):
            rows.append({"model": model, "image": f"im{i}", "target": "1", "correct": str(ok)})
    config = ml_collections.ConfigDict({"architectures": None})
    groups = dict(concentration.overlap_groups(concentration.correctness(rows), list(truth), config))
    assert groups["best model per architecture"] == ["a_net0", "b_net1"]
    assert groups["architecture a_net"] == ["a_net0", "a_net1"]
    right = concentration.correctness(rows)
    assert right[("a_net0", "im0")] is True and right[("b_net0", "im0")] is False
    # no labels: the majority target is "right"
    unlabelled = [{"model": m, "image": "im0", "target": t, "correct": ""} for m, t in
                  (("a_net0", "7"), ("a_net1", "7"), ("b_net0", "3"))]
    votes = concentration.correctness(unlabelled)
    assert votes[("a_net0", "im0")] and votes[("a_net1", "im0")] and not votes[("b_net0", "im0")]


def test_photobomb_table_reports_the_chance_level():
    """On the photobombing set the segmentation is the occluders: a method's OUT must be read
    beside what a random pixel set scores (1 - the occluded fraction), and both IN and OUT
    are shown (OUT was once dropped whenever it equalled 1 - IN)."""
    rows = []
    for image, seg in (("a", 0.04), ("b", 0.08)):
        rows.append({"method": "rex", "image": image, "area": 0.1, "ins": 0.9, "del": 0.1, "IN": 0.0, "OUT": 1.0,
                     "segment_area": seg, "time_s": 1.0, "compile_s": None, "forward_images": 10})
    table = compare.paper_table([{k: str(v) for k, v in r.items()} for r in rows])
    header, _, rex = table.splitlines()[:3]
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in rex.split("|")]))
    assert float(cells["OUT"]) == pytest.approx(1.0) and float(cells["IN"]) == pytest.approx(0.0)
    assert float(cells["OUT_chance"]) == pytest.approx(0.94) and float(cells["IN_chance"]) == pytest.approx(0.06)
    assert math.isclose(evaluation.summary(rows)["rex"]["OUT_chance"], 0.94)


def test_study_configs_follow_the_papers():
    """SHAPE against RISE on identical masks (same grid, p and count: the SHAPE paper's p 0.1
    and, at paper size, its 6000 masks); rex_compare, concentration and convad_robustness run
    the 1/n rule of the tool their papers ran (not the library's default), rex_compare at 20
    iterations and step 100 in its paper variant."""
    from tests.experiments.helpers import load_config

    for size, masks in (("cpu", 2000), ("paper", 6000)):
        c = load_config("shape_vs_metrics", size)
        assert (c.rise.n_masks, c.rise.grid, c.rise.p) == (c.shape.n_masks, c.shape.grid, c.shape.p) == (masks, 7, 0.1)
    for size in ("cpu", "paper"):
        assert load_config("rex_compare", size).rex.search.responsibility == "tool"
    for study in ("concentration", "convad_robustness"):
        assert load_config(study).rex.search.responsibility == "tool", study
    from rexjax import metrics

    paper = load_config("rex_compare", "paper")
    assert paper.rex.search.iters == 20 and paper.step is None and metrics.REX.step == 100  # None: the convention's
