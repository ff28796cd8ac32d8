"""Screens rexjax configurations per (image, seed) against the ReX tool's rows of an earlier
`make bench-compare` run.

Forward images, area, normalised insertion and sufficiency are deterministic for a seed (the
tool's too), so a rexjax point can be set against the tool's rows of another run on those
columns; seconds cannot (they are written, not compared). Every point (RexConfig fields over
the `--rex` config) runs on all images x seeds, scored exactly as in `benchmarks.compare`
(rexjax's insertion AUC, REX convention; sufficiency by the torch model). Per pair: forward
images, area, insertion; per point: medians, the median per-pair ratio of forward images
(tool / rexjax), and on how many pairs rexjax's area is no larger and its insertion no lower
than the tool's. A screen, not a verdict: the seconds ratio comes from `make bench-compare`
(both tools in one run).

Writes `pairs.csv` (appended; a rerun skips the (point, image, seed) rows already there),
`summary.md` and `provenance.json` under --out.

  .venv/bin/python -m benchmarks.screen --seeds 1,2,3 --out=benchmarks/results/screen/<YYYY-MM-DD>-<setting> \\
      --grid '[{"iters": 8}, {"tree_depth": 9}]'
"""

from __future__ import annotations

import csv
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from absl import app, flags

from benchmarks import config as rex_flags
from benchmarks import image_sets, tool_env

ROOT = Path(__file__).resolve().parents[1]
TOOL_PAIRS = ROOT / "benchmarks" / "results" / "bench_compare" / "2026-12-01-iters6-depth4-growth0.05" / "pairs.csv"
COLUMNS = ["point", "image", "seed", "forward_images", "forward_images_map", "forward_images_extract", "seconds",
           "area", "insertion", "sufficient"]
FLAGS = flags.FLAGS
DEFAULT_IMAGES = image_sets.TUNING


def define_flags() -> None:
    """The command line (defined only when run as a script, so tests can import this module)."""
    flags.DEFINE_string("images", str(DEFAULT_IMAGES), "Folder of images (or one image); default: the tuning "
                        "set, what defaults are chosen on (benchmarks/image_sets.py).")
    flags.DEFINE_list("seeds", ["1", "2", "3"], "Seeds.")
    rex_flags.define_rex_flag("fast")
    flags.DEFINE_string("grid", None, "JSON list of dicts of RexConfig fields over --rex, one per point.", required=True)
    flags.DEFINE_string("tool_pairs", str(TOOL_PAIRS), "pairs.csv of a bench-compare run: the tool's rows are the reference.")
    flags.DEFINE_string("out", str(ROOT / "out" / "screen"), "Output folder.")
    flags.DEFINE_string("venv", str(tool_env.DEFAULT_VENV), "The torch environment (built if missing).")


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
    from benchmarks.runs import Scorer, ToolWorker, run_rexjax, source_state, write_provenance
    from rexjax import data, models
    from rexjax.causal import RexConfig
    from rexjax.causal.explainer import Explainer
    from rexjax.classifier import Classifier

    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pairs.csv"
    rows = list(csv.DictReader(open(path))) if path.is_file() else []
    have = {(r["point"], r["image"], r["seed"]) for r in rows}
    images = data.list_images(FLAGS.images)
    seeds = [int(s) for s in FLAGS.seeds]
    base = RexConfig.from_dict(FLAGS.rex)
    model = models.load("efficientnet_lite0")
    classifier = Classifier.of(model)
    worker = ToolWorker(tool_env.ensure(Path(FLAGS.venv)), out / "tool_worker.log")
    tool_info = worker.ask({"op": "info"})
    scorer = Scorer(classifier, worker)
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
            explainer = Explainer(classifier, base.replace(**options), mask_mode=0.0)
            run_rexjax(explainer, xs[todo[0][0]], todo[0][0], todo[0][1])  # compile, not counted
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
    text = (f"Images: {image_sets.describe(FLAGS.images)}.\n\nScreen: rexjax points against the tool's rows of `{Path(FLAGS.tool_pairs).parent.name}/pairs.csv` "
            f"(deterministic columns only; seconds are in pairs.csv, not compared).\n\n" + table(summarise(rows, tool_rows)))
    (out / "summary.md").write_text(text)
    write_provenance(out, "screen", "screen", rexjax_commit=source_state(), base_config=base.to_dict(),
                     image_set=image_sets.describe(FLAGS.images),
                     tool_pairs=FLAGS.tool_pairs, versions={"rex_xai": tool_info["rex_xai"], "torch": tool_info["torch"]})
    print(text)
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
