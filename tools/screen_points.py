"""Screens rexjax configurations per (image, seed) against the ReX tool's rows of an earlier
`make bench-compare` run.

Forward images, area, normalised insertion and sufficiency are deterministic for a seed (the
tool's too), so a rexjax point can be set against the tool's rows of another run on those
columns; seconds cannot (they are written, not compared). Every point runs on all images x
seeds, scored exactly as in `tools/bench_compare.py` (rexjax's insertion AUC, REX convention;
sufficiency by the torch model). Per pair: forward images, area, insertion; per point: medians,
the median per-pair ratio of forward images (tool / rexjax), and on how many pairs rexjax's
area is no larger and its insertion no lower than the tool's. A screen, not a verdict: the
seconds ratio comes from `make bench-compare` (both tools in one run).

Writes `pairs.csv` (appended; a rerun skips the (point, image, seed) rows already there) and
`summary.md` under --out.

  .venv/bin/python tools/screen_points.py --seeds 1,2,3 \\
      --grid '[{"iters": 6, "tree_depth": 7, "max_active": 1, "prefix_growth": 0.05}]'
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from absl import app, flags

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_env  # noqa: E402  (sibling scripts, not part of the package)

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["point", "image", "seed", "forward_images", "forward_images_map", "forward_images_extract", "seconds",
           "area", "insertion", "sufficient"]
FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line (defined only when run as a script, so tests can import this module)."""
    flags.DEFINE_string("images", str(ROOT / "third_party" / "images"), "Folder of images (or one image).")
    flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds.")
    flags.DEFINE_string("grid", None, "JSON list of RexConfig-field dicts, one per point.", required=True)
    flags.DEFINE_string("tool_pairs", str(ROOT / "experiments" / "results" / "bench_compare_fast" / "pairs.csv"),
                        "pairs.csv of a bench-compare run: the tool's rows are the reference.")
    flags.DEFINE_string("out", str(ROOT / "experiments" / "results" / "screen"), "Output folder.")
    flags.DEFINE_string("venv", str(bench_env.DEFAULT_VENV), "The torch environment (built if missing).")


def point_label(options: dict) -> str:
    return json.dumps(options, sort_keys=True)


def summarise(rows: list[dict], tool_rows: list[dict]) -> list[dict]:
    """One dict per point: medians over its pairs and the pairs' comparison with the tool's
    row of the same (image, seed). Points with a pair the tool lacks are refused (KeyError)."""
    tool = {(r["image"], str(r["seed"])): r for r in tool_rows if r["tool"] == "rex-xai"}
    points: dict[str, list[dict]] = {}
    for r in rows:
        points.setdefault(r["point"], []).append(r)
    out = []
    for point, ours in points.items():
        theirs = [tool[(r["image"], str(r["seed"]))] for r in ours]
        med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
        out.append({
            "point": point, "pairs": len(ours),
            "forward_images": med(ours, "forward_images"), "area": med(ours, "area"), "insertion": med(ours, "insertion"),
            "tool_forward_images": med(theirs, "forward_images"), "tool_area": med(theirs, "area"),
            "tool_insertion": med(theirs, "insertion"),
            "forward_ratio": statistics.median(float(t["forward_images"]) / float(r["forward_images"])
                                               for r, t in zip(ours, theirs)),
            "area_no_larger": sum(float(r["area"]) <= float(t["area"]) for r, t in zip(ours, theirs)),
            "insertion_no_lower": sum(float(r["insertion"]) >= float(t["insertion"]) for r, t in zip(ours, theirs)),
            "sufficient": sum(str(r["sufficient"]) == "True" for r in ours),
        })
    return out


def table(summary: list[dict]) -> str:
    lines = ["| point | pairs | forward images | area | insertion | tool: forward images | area | insertion | "
             "forward ratio (tool / rexjax, median per pair) | area no larger | insertion no lower | sufficient |",
             "| --- " * 12 + "|"]
    for s in summary:
        lines.append(f"| `{s['point']}` | {s['pairs']} | {s['forward_images']:.0f} | {s['area']:.3f} | {s['insertion']:.3f} | "
                     f"{s['tool_forward_images']:.0f} | {s['tool_area']:.3f} | {s['tool_insertion']:.3f} | "
                     f"{s['forward_ratio']:.2f} | {s['area_no_larger']}/{s['pairs']} | {s['insertion_no_lower']}/{s['pairs']} | "
                     f"{s['sufficient']}/{s['pairs']} |")
    return "\n".join(lines) + "\n"


def main(argv):
    from bench_runs import Scorer, ToolWorker, run_rexjax

    from rexjax import data, models
    from rexjax.api import make_explainer
    from rexjax.classifier import Classifier

    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pairs.csv"
    rows = list(csv.DictReader(open(path))) if path.is_file() else []
    have = {(r["point"], r["image"], r["seed"]) for r in rows}
    images = data.list_images(FLAGS.images)
    seeds = [int(s) for s in FLAGS.seeds]
    model = models.load("efficientnet_lite0")
    worker = ToolWorker(bench_env.ensure(Path(FLAGS.venv)), out / "tool_worker.log")
    scorer = Scorer(Classifier.of(model), worker)
    with tempfile.TemporaryDirectory() as tmpdir, open(path, "a", newline="") as f:
        tmp = Path(tmpdir)
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if not rows:
            writer.writeheader()
        xs = {p.name: model.preprocess(p) for p in images}
        for name, x in xs.items():
            np.save(tmp / f"{name}.npy", x)
        for options in json.loads(FLAGS.grid):
            label = point_label(options)
            todo = [(n, s) for s in seeds for n in xs if (label, n, str(s)) not in have]
            if not todo:
                continue
            explainer = make_explainer(model, **options)
            explainer(xs[todo[0][0]], key=todo[0][1])  # compile, not counted
            for name, seed in todo:
                r = run_rexjax(explainer, xs[name], name, seed)
                sc = scorer(r, xs[name], tmp / f"{name}.npy", tmp)
                row = {"point": label, "image": name, "seed": str(seed), "forward_images": r.forward_images,
                       "forward_images_map": r.forward_images_map, "forward_images_extract": r.forward_images_extract,
                       "seconds": round(r.seconds, 2), "area": round(sc["area"], 5), "insertion": round(sc["insertion"], 5),
                       "sufficient": sc["sufficient_torch"]}
                writer.writerow(row)
                f.flush()
                rows.append({k: str(v) for k, v in row.items()})
            print(f"done {label}", flush=True)
    worker.close()
    (out / "tool_worker.log").unlink(missing_ok=True)
    tool_rows = list(csv.DictReader(open(FLAGS.tool_pairs)))
    text = (f"Screen: rexjax points against the tool's rows of `{Path(FLAGS.tool_pairs).parent.name}/pairs.csv` "
            f"(deterministic columns only; seconds are in pairs.csv, not compared).\n\n" + table(summarise(rows, tool_rows)))
    (out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
