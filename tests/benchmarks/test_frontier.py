"""benchmarks/frontier.py: grid points over the --rex config, resuming from frontier.csv, outputs."""

from pathlib import Path

from benchmarks import frontier
from rexjax.causal import RexConfig


def test_points_apply_over_the_base_config_and_unknown_fields_are_skipped_and_reported():
    # Catches a point built over RexConfig() instead of the --rex base (base's tree_depth lost),
    # a point not applied (iters stays 6), and an unknown field that crashes the sweep.
    said = []
    base = RexConfig().replace(tree_depth=4)
    keep = frontier.usable([{}, {"iters": 5, "prefix_step": 25}, {"iters": 5, "early_stop": 2}], base, said.append)
    assert [point for point, _ in keep] == [{}, {"iters": 5, "prefix_step": 25}]
    assert keep[0][1] == base
    config = keep[1][1]
    assert (config.search.iters, config.search.tree_depth, config.extract.prefix_step) == (5, 4, 25)
    assert len(said) == 1 and "early_stop" in said[0]


def row(tool, point, images, seeds, area):
    return {"tool": tool, "point": point, "runs": 2, "forward_images": 700.0, "seconds": 10.0, "area": area,
            "insertion": 0.9, "deletion": 0.2, "sufficient": 2, "images": images, "seeds": seeds}


def test_write_then_resume_keeps_only_the_same_images_and_seeds(tmp_path):
    rows = [row("rex-xai", "iters=2", "a.jpg b.jpg", "1 2", 0.1), row("rexjax", "iters=5", "a.jpg b.jpg", "1 2", 0.05),
            row("rexjax", "iters=5", "a.jpg b.jpg", "1", 0.07), row("rexjax", "iters=5", "a.jpg", "1 2", 0.08)]
    facts = {"images": ["a.jpg", "b.jpg"], "seeds": [1, 2], "cpus": 2, "load_start": (1.0, 1.0, 1.0), "load_end": (2.0, 2.0, 2.0)}
    text = frontier.write(rows, facts, tmp_path)
    assert (tmp_path / "frontier.png").stat().st_size > 0 and "| rexjax | iters=5 | 700 |" in text
    again = frontier.done_rows(tmp_path, [Path("a.jpg"), Path("b.jpg")], [1, 2])
    assert again == rows[:2]
