"""Study: ReX against the saliency baselines on the vendored images (ReX paper Table 1 protocol).

Paper-sized settings (ReX 20 iterations, RISE 4000 masks, LIME 1000 samples, step 100):

    rexjax evaluate --config=experiments/configs/evaluate.py

CPU-sized (the 11-image CPU run: ReX 10 iterations, RISE 1000 masks,
IG 32 steps, LIME 500 samples, insertion/deletion step 250):

    rexjax evaluate --config=experiments/configs/evaluate.py:cpu

Captum defaults (the ReX paper's Table 1 protocol: every baseline but RISE ran through Captum
"with default settings", RISE through the authors' code; see BUILD_NOTES for what of Captum
cannot be reproduced here):

    rexjax evaluate --config=experiments/configs/evaluate.py:captum

Any field can be overridden after the config, e.g.
`--config.methods=rex,rise --config.max_images=2 --config.out=out/evaluate_small`.
The defaults (fields and their meaning) are `rexjax/configs/evaluate.py`, which this extends.
"""

from rexjax.configs import evaluate as base
from rexjax.configs import rex
from rexjax.studies.configs import captum_defaults, cpu_budget

SIZES = ("paper", "cpu", "captum")


def get_config(size: str = "paper"):
    if size not in SIZES:
        raise ValueError(f"config argument must be one of {SIZES}, got {size!r}")
    config = base.get_config()
    config.out = f"out/evaluate_{size}"
    if size == "paper":
        config.rex = rex.get_config("paper")
    if size == "captum":
        captum_defaults(config)
    if size == "cpu":
        cpu_budget(config)
    return config
