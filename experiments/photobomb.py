"""Makes the photobombing set (ReX paper Sec. 6): black occluders that leave the model's
top-1 unchanged, written as an image folder + occluder masks (`rexjax.studies.photobomb`):

    python experiments/photobomb.py --images=third_party/images --out=out/photobomb \
        --model=efficientnet_lite0 --seed=0

then explain it with the occluders as the segmentation (IN = share of the explanation on
the occluders):

    python experiments/run.py --config experiments/configs/rex_compare.py \
        --config.images=out/photobomb/images --config.data.masks=out/photobomb/masks \
        --config.out=out/rex_compare_photobomb
"""

from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags

_IMAGES = flags.DEFINE_string("images", "third_party/images", "image folder (or file)")
_OUT = flags.DEFINE_string("out", "out/photobomb", "output folder: images/, masks/, photobomb.csv")
_MODEL = flags.DEFINE_string("model", "efficientnet_lite0", "zoo model whose top-1 must not change")
_SEED = flags.DEFINE_integer("seed", 0, "image i draws its placements from default_rng([seed, i])")
_N = flags.DEFINE_integer("n_occluders", 3, "occluding squares per image")
_SIZE = flags.DEFINE_list("size", ["0.2", "0.35"], "side range, fractions of min(H, W): LOW,HIGH (defaults: about "
                          "16 % of the image occluded, chance-level OUT about 0.84; rexjax.studies.photobomb says why)")
_PLACEMENT = flags.DEFINE_enum("placement", "uniform", ["uniform", "disjoint"],
                               "uniform positions (squares may overlap) or disjoint squares")
_COLOUR = flags.DEFINE_enum("colour", "black", ["black", "random"], "occluder colour: black or one random colour per square")
_TRIES = flags.DEFINE_integer("tries", 16, "candidate placements per image (the first that keeps the top-1 wins)")
_MAX = flags.DEFINE_integer("max_images", None, "only the first N images")
_ALLOW_DIRTY = flags.DEFINE_bool("allow_dirty", False, "write into the repository's experiments/results from a tree "
                                 "with uncommitted changes (recorded in provenance.json)")


def main(argv) -> int:
    if len(argv) > 1:
        print(f"photobomb.py: takes flags only, got {argv[1:]}", file=sys.stderr)
        return 2
    from rexjax import models, provenance
    from rexjax.classifier import Classifier
    from rexjax.studies import photobomb, runner

    try:
        size = tuple(float(v) for v in _SIZE.value)
        if len(size) != 2:
            raise ValueError(f"size must be LOW,HIGH, got {_SIZE.value}")
        models.get_spec(_MODEL.value)
        state = provenance.code_state()
        runner.check_clean(Path(_OUT.value), state, _ALLOW_DIRTY.value)
        rows = photobomb.write_set(Classifier.of(_MODEL.value), _IMAGES.value, _OUT.value, seed=_SEED.value,
                                   n_occluders=_N.value, size=size, placement=_PLACEMENT.value, colour=_COLOUR.value,
                                   tries=_TRIES.value, max_images=_MAX.value)
    except ValueError as err:
        print(f"photobomb.py: {err}", file=sys.stderr)
        return 2
    except runner.Refused as err:
        print(f"photobomb.py: {err}", file=sys.stderr)
        return 1
    settings = dict(images=_IMAGES.value, model=_MODEL.value, seed=_SEED.value, n_occluders=_N.value, size=list(size),
                    placement=_PLACEMENT.value, colour=_COLOUR.value, tries=_TRIES.value, max_images=_MAX.value)
    provenance.write(_OUT.value, provenance.record(config=settings, state=state, study="photobomb",
                                                   allow_dirty=_ALLOW_DIRTY.value))
    kept = [r for r in rows if not r["skipped"]]
    chance = sum(r["chance_out"] for r in kept) / len(kept) if kept else float("nan")
    print(f"kept {len(kept)} of {len(rows)} images in {_OUT.value} (images/, masks/, photobomb.csv); "
          f"chance-level OUT {chance:.3f}")
    return 0


if __name__ == "__main__":
    app.run(main)
