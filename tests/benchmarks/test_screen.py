"""benchmarks/screen.py: a rexjax point's pairs set against the tool's rows of the same
(image, seed) of a bench-compare run."""

import pytest

from benchmarks.screen import summarise, table


def _ours(point, image, seed, fi, area, ins, suff=True):
    return {"point": point, "image": image, "seed": str(seed), "forward_images": str(fi), "area": str(area),
            "insertion": str(ins), "sufficient": str(suff)}


def _tool(image, seed, fi, area, ins):
    return {"tool": "rex-xai", "image": image, "seed": seed, "forward_images": str(fi), "area": str(area),
            "insertion": str(ins)}


TOOL = [_tool("a.jpg", "1", 3000, 0.10, 0.9), _tool("b.jpg", "1", 2000, 0.02, 0.8), _tool("a.jpg", "2", 1000, 0.05, 1.0),
        # rexjax's own rows in a bench-compare pairs.csv are not the reference
        {"tool": "rexjax", "image": "a.jpg", "seed": "1", "forward_images": "1", "area": "0.9", "insertion": "0.0"}]


def test_pairs_are_matched_by_image_and_seed():
    rows = [_ours("p", "a.jpg", 1, 1000, 0.10, 0.8), _ours("p", "b.jpg", 1, 500, 0.01, 0.9),
            _ours("p", "a.jpg", 2, 500, 0.20, 1.0, suff=False)]
    (s,) = summarise(rows, TOOL)
    assert s["pairs"] == 3 and s["sufficient"] == 2
    assert s["forward_images"] == 500 and s["tool_forward_images"] == 2000
    assert s["area"] == 0.10 and s["tool_area"] == 0.05 and s["insertion"] == 0.9 and s["tool_insertion"] == 0.9
    assert s["forward_ratio"] == 3.0  # per pair 3.0, 4.0, 2.0 (tool / rexjax)
    assert s["area_no_larger"] == 2  # equal area counts (a.jpg seed 1)
    assert s["insertion_no_lower"] == 2  # b.jpg and a.jpg seed 2 (equal)
    assert "| 3 | 500 | 0.100 | 0.900 | 2000 |" in table([s])


def test_points_are_kept_apart_and_a_missing_tool_pair_is_refused():
    rows = [_ours("p", "a.jpg", 1, 1500, 0.1, 0.9), _ours("q", "a.jpg", 1, 3000, 0.1, 0.9)]
    assert [s["forward_ratio"] for s in summarise(rows, TOOL)] == [2.0, 1.0]
    with pytest.raises(KeyError):
        summarise([_ours("p", "c.jpg", 1, 1, 0.1, 0.9)], TOOL)
