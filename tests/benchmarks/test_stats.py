"""benchmarks/stats.py: the statistics of `make bench-compare` (pairs, ratios, bootstrap)."""

import numpy as np
import pytest

from benchmarks.stats import Run, bootstrap_median, pair_ratios, summary


def run(tool, image, seed, seconds, area=0.1, sufficient=True, sufficient_jax=True):
    z = np.zeros((2, 2))
    r = Run(tool, image, seed, 1, seconds, seconds, 0.0, 100, 90, 10, z, z.astype(bool))
    r.scores = {"area": area, "insertion": 0.5, "deletion": 0.1, "sufficient_torch": sufficient,
                "sufficient_jax": sufficient_jax, "images_per_s": 100 / seconds}
    return r


def test_bootstrap_median_and_interval():
    m, lo, hi = bootstrap_median([5.0] * 7, 200)
    assert m == lo == hi == 5.0
    v = np.arange(1.0, 102.0)  # median 51; medians of resamples stay near it
    m, lo, hi = bootstrap_median(v, 2000)
    assert m == 51.0 and 40 < lo < 51 < hi < 62
    assert bootstrap_median(v, 500, seed=3) == bootstrap_median(v, 500, seed=3)


def test_pair_ratios_match_image_and_seed_not_order():
    runs = [run("rex-xai", "a", 1, 30.0), run("rex-xai", "b", 1, 8.0), run("rex-xai", "a", 2, 12.0),
            run("rexjax", "a", 2, 4.0), run("rexjax", "b", 1, 2.0), run("rexjax", "a", 1, 10.0),
            run("rex-xai", "c", 1, 5.0)]  # no rexjax partner: left out
    assert pair_ratios(runs, "seconds") == [3.0, 4.0, 3.0]
    runs.append(run("rexjax", "c", 1, 1.0, area=0.0))
    assert pair_ratios(runs, "area") == [1.0, 1.0, 1.0]  # zero denominators are left out


def test_summary_counts_sufficiency_per_tool():
    runs = [run("rex-xai", "a", 1, 30.0, sufficient=False), run("rexjax", "a", 1, 10.0),
            run("rex-xai", "a", 2, 30.0), run("rexjax", "a", 2, 10.0)]
    text = summary(runs, 100)
    tool_line = next(l for l in text.splitlines() if l.startswith("| rex-xai |"))
    assert tool_line.endswith("| 1/2 | 2/2 |")  # torch's check, then the jax model's
    assert "| 3.00 (3.00-3.00) |" in text  # seconds ratio per pair


@pytest.mark.slow
def test_bench_compare_smoke(tmp_path):
    """Both tools on one image, one seed, 2 iterations: one row each, same class, sufficient
    by the torch model, scored by one metric code. Needs the torch env (`benchmarks/tool_env.py`)."""
    import csv
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if not (root / ".venv-bench" / "bin" / "python").exists():
        pytest.skip("no .venv-bench (python -m benchmarks.tool_env builds it)")
    out = subprocess.run([sys.executable, "-m", "benchmarks.compare", "--limit=1", "--seeds=1", "--rex.search.iters=2",
                          "--tool_iters=2", f"--out={tmp_path}", "--bootstrap=50"], cwd=root, capture_output=True,
                         text=True, timeout=3000)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / "pairs.csv")))
    assert sorted(r["tool"] for r in rows) == ["rex-xai", "rexjax"]
    assert len({r["target"] for r in rows}) == 1
    assert all(r["sufficient_torch"] == "True" and 0 < float(r["area"]) < 1 for r in rows)
    assert "rex-xai / rexjax" in (tmp_path / "summary.md").read_text()
    assert "benchmarks.compare" in (tmp_path / "provenance.json").read_text()
