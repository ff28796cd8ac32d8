"""Studies `rex_compare` (ReX paper Tables 1-3, Figs. 7-9) and `shape_vs_metrics` (SHAPE
paper): every method of `config.methods` on every image and model, all measured alike by
`rexjax.evaluation.Evaluator` (area of the ReX extraction of each map, normalised
insertion / deletion AUC, IN / OUT against the layout's segmentations).

Analysis, per model: the paper-format table (tool, n, area mean and sample std, ins, del,
IN and OUT each beside its chance level, time, forward images; `evaluation.summary_table`'s numbers), box and violin plots
of the area per method, and the insertion / deletion ranking (best ins = highest, best del
= lowest) that the SHAPE paper reads: a method that ranks first there need not explain.
"""

from __future__ import annotations

from pathlib import Path

from rexjax import evaluation
from rexjax.report import plots
from rexjax.report.html import markdown_table
from rexjax.report.maps import slug
from rexjax.studies.runner import Section, Variant, by_model, method_variants
from rexjax.studies.tables import numeric, values

EXTRA_COLUMNS: tuple = ()


def variants(config) -> list[Variant]:
    return method_variants(config)


def paper_table(rows) -> str:
    """ReX paper Table 1 columns from `evaluation.summary` (means over images); with
    segmentations IN and OUT both, each beside its chance level (a random pixel set's)."""
    stats = evaluation.summary(numeric(rows))
    cols = ["n", "area", "std", "ins", "del", *evaluation.segment_columns(stats), "time_s", "forward_images"]
    return markdown_table(["tool"] + cols, [[m] + [s.get(c) for c in cols] for m, s in stats.items()])


def ranking(rows) -> str:
    """Methods ordered by mean insertion AUC (descending), with their deletion rank."""
    stats = evaluation.summary(numeric(rows))
    by_ins = sorted(stats, key=lambda m: -(stats[m]["ins"] or 0.0))
    by_del = sorted(stats, key=lambda m: stats[m]["del"] if stats[m]["del"] is not None else 1e9)
    return markdown_table(["tool", "ins", "ins rank", "del", "del rank"],
                          [[m, stats[m]["ins"], by_ins.index(m) + 1, stats[m]["del"], by_del.index(m) + 1] for m in by_ins])


def analyse(rows, out, config) -> list[Section]:
    out = Path(out)
    sections = []
    for model, rs, methods in by_model(rows):
        groups = {m: values(rs, "area", method=m) for m in methods}
        box = plots.distributions(out / f"area_box_{slug(model)}.png", groups, kind="box", ylabel="area (fraction)",
                                  title=f"{model}: explanation area")
        violin = plots.distributions(out / f"area_violin_{slug(model)}.png", groups, kind="violin",
                                     ylabel="area (fraction)", title=f"{model}: explanation area")
        sections.append(Section(f"{model}: ReX paper Table 1 format", paper_table(rs), (box.name, violin.name)))
        sections.append(Section(f"{model}: insertion / deletion ranking", ranking(rs)))
    return sections
