"""`rexjax evaluate`: saliency methods + metrics on a folder of images (ReX paper Table 1).

Settings come from an ml_collections config (default: `rexjax/configs/evaluate.py`, the
papers' settings); any field is overridden on the command line:

    rexjax evaluate
    rexjax evaluate --config.methods=rex,rise,gradcam,ig,lime --config.images=third_party/images \\
        --config.rise.n_masks=1000 --config.rex.iters=10 --config.step=250 --config.max_images=4
    rexjax evaluate --config.mask_mode=ad --config.masks=DIR --config.out=out/ad
    rexjax evaluate --config=experiments/configs/evaluate.py:cpu      # a study's config file

Top-level fields: model, weights, images, masks, out, methods (comma separated names or
aliases), seed, batch_size, mask_mode, convention (rex|rise), step, max_images, warmup; one
sub-config per method under its registry name (`--config.lime.n_samples=500`,
`--config.integrated_gradients.n_steps=32`). `mask_mode` and `batch_size` reach every method
that takes them and the metrics.

For every image the model's top-1 class is explained by every method. Per (image, method)
one CSV row (`rexjax.evaluation.COLUMNS`): area (the ReX global extraction applied to the
map, pixels / H W), ins and del (insertion/deletion AUC; convention rex: the mask_mode
substrate, step 100, normalised by the full-image confidence), IN/OUT (fraction of that
extraction inside/outside the image's segmentation `<masks>/<image stem>.png`, nonzero =
segment), the method's time (warm; the first call's compile time apart, `compile_s`,
unless --config.warmup=False) and forward images, the extraction's forward images, and what
reproduces the row on its own: model, weights, mask_mode, convention, step and substrates,
seed and image index, the method's full config as JSON (defaults included) and the rexjax
version. Every method is measured the same way (`rexjax.evaluation.Evaluator`). Writes
`<out>/results.csv` (row by row) and `<out>/summary.txt` (n, area mean and sample std, ins,
del, IN, time_s, compile_s, fwd per method), and prints the summary table. An image that
fails (unreadable file, a method's error) is one line on stderr and no row; the others are
evaluated, the summary names the failed ones, and the exit status is 1.
"""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

from ml_collections import config_flags

from rexjax.commands import common

from rexjax.configs import evaluate as default_config

DEFAULT_CONFIG = default_config.__file__  # a plain file inside the installed package


def _defaults() -> str:
    """The default config's fields, one line per level (for --help)."""
    config = default_config.get_config().to_dict()
    top = " ".join(f"{k}={v}" for k, v in config.items() if not isinstance(v, dict))
    subs = [f"{k}: " + " ".join(f"{a}={b}" for a, b in v.items()) for k, v in config.items() if isinstance(v, dict)]
    return "\n".join([top, *subs])


_CONFIG = config_flags.DEFINE_config_file(
    "config", DEFAULT_CONFIG,
    "ml_collections config file with get_config() (PATH or PATH:ARG); fields overridable as "
    "--config.FIELD=VALUE, e.g. --config.methods=rex,rise --config.rise.n_masks=1000. "
    "Default fields:\n" + _defaults(),
)


def _fail(message) -> int:
    """One line on stderr (the first line of `message`), exit status 2."""
    print(f"rexjax evaluate: {common.first_line(message) if isinstance(message, BaseException) else message}",
          file=sys.stderr)
    return 2


def main(argv) -> int:
    if len(argv) > 1:
        return _fail(f"takes flags only (--config.FIELD=VALUE), got {argv[1:]}")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    return run(_CONFIG.value)


def run(config) -> int:
    """Evaluates with `config` (a ConfigDict shaped like the default config); returns the exit
    status (2: a setting is invalid, reported in one line before the model is loaded)."""
    from tqdm.auto import tqdm

    from rexjax import data, evaluation, models

    # Everything that can be checked without the model is checked first: names, method
    # configs (each factory validates its own), the metric settings and the image list.
    try:
        shared = {"mask_mode": config.mask_mode, "batch_size": config.batch_size}
        methods = evaluation.make_methods(config.methods, config, shared=shared)
        settings = evaluation.check_settings(
            mask_mode=config.mask_mode, convention=config.convention, step=config.step,
            batch_size=config.batch_size, seed=config.seed, masks_dir=config.masks,
            warmup=config.get("warmup", True),
        )
        spec = models.get_spec(config.model)
        common.check_mask_mode(config.mask_mode, "mask_mode")
        common.check_batch_size(config.batch_size, spec.input_size, "batch_size")
        common.check_range("seed", config.seed, 0, common.MAX_SEED)
        samples = data.folder(config.images, config.masks)
        if config.max_images is not None:
            if config.max_images < 1:
                raise ValueError(f"max_images must be >= 1 (or None for all), got {config.max_images}")
            samples = samples[: config.max_images]
        common.check_out_dir(config.out, "out")
        evaluator = evaluation.Evaluator(models.load(config.model, config.weights), methods, **settings)
    except ValueError as err:
        return _fail(err)

    out = Path(config.out)
    csv_path, summary_path = out / "results.csv", out / "summary.txt"
    rows, failed = [], []
    with open(csv_path, "w", newline="") as f, \
            tqdm(total=len(samples), desc="evaluate", unit="image", disable=None) as bar:
        writer = csv.DictWriter(f, fieldnames=evaluation.COLUMNS)
        writer.writeheader()
        for i, sample in enumerate(samples):
            bar.set_postfix_str(sample.name, refresh=False)
            try:  # every method of an image, or none: results.csv never holds half an image
                image_rows = list(evaluator.image_rows(i, sample))
            except Exception as err:  # one bad image never stops the run (Ctrl-C does)
                failed.append(sample.name)
                tqdm.write(f"rexjax evaluate: {sample.name}: {type(err).__name__}: {common.first_line(err)}",
                           file=sys.stderr)
                bar.update(1)
                continue
            for r in image_rows:
                rows.append(r)
                writer.writerow(evaluation.csv_values(r))
                tqdm.write(f"{r['image']:<32} {r['method']:<14} area {r['area']:.4f} ins {r['ins']:.4f} "
                           f"del {r['del']:.4f} time {r['time_s']:.2f}s fwd {r['forward_images']}")
            f.flush()
            bar.update(1)
    conv = evaluator.convention
    run = evaluator.run_columns
    evaluated = f"{len(samples) - len(failed)} images" + (f" ({len(failed)} failed: {', '.join(failed)})" if failed else "")
    header = (f"model {run['model']}, {evaluated}, weights {run['weights'] or '-'}, "
              f"convention {conv.name} (step {conv.step}, insertion over {run['ins_substrate']}, deletion over "
              f"{run['del_substrate']}), mask_mode {run['mask_mode']}, seed {run['seed']}, "
              f"methods {config.methods}, rexjax {run['rexjax_version']}")
    table = evaluation.summary_table(rows)
    summary_path.write_text(f"{header}\n{table}\n\nconfig:\n{config}")
    print(header)
    print(table)
    print(f"wrote {csv_path} and {summary_path}")
    if failed:
        print(f"rexjax evaluate: {len(failed)} of {len(samples)} images failed", file=sys.stderr)
    return 1 if failed else 0
