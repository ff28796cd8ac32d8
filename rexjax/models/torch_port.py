"""Shared conventions of the torchvision/timm ports (ResNet, VGG, RegNetY, EfficientNet-V2).

* Key naming: Flax module names mirror the torch module tree with '_' in place of '.'
  (none of the parameter-bearing torch module names of these families contains '_'), so one
  rule maps every Flax variable path to its torch state_dict key:

      ('params', 'layer2_0', 'downsample_1', 'scale')         -> 'layer2.0.downsample.1.weight'
      ('batch_stats', 's3', 'b4', 'conv2', 'bn', 'var')      -> 's3.b4.conv2.bn.running_var'
      ('params', 'features_4_0', 'block_2', 'fc1', 'kernel') -> 'features.4.0.block.2.fc1.weight'

  Layouts (OIHW -> HWIO, (out,in) -> (in,out)) and every key/shape check are done by
  `rexjax.models.convert.checks.convert_state_dict`.
* Feature points: `feature(module, name, x)` = `module.perturb` + `module.sow("intermediates")`
  (the registry's contract for Grad-CAM and ConvAD tests).
* Preprocessing: ImageNet mean/std (0..255 units); the whole image is resized to the
  model's eval crop size (no resize-then-crop: explanations cover the whole image).
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import flax.linen as nn
import jax
import numpy as np

from rexjax.models.convert.checks import convert_state_dict
from rexjax.models.model import variables_template
from rexjax.models.preprocess import Preprocess

LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def dotted_key(path: tuple[str, ...]) -> str:
    """`(collection, *modules, leaf)` -> torch key (see module docstring)."""
    if len(path) < 3 or path[-1] not in LEAF_NAMES:
        raise ValueError(f"not a zoo variable path: {path!r}")
    mods = [part for m in path[1:-1] for part in m.split("_")]
    return ".".join(mods + [LEAF_NAMES[path[-1]]])


def feature(module: nn.Module, name: str, x: jax.Array) -> jax.Array:
    """Named feature point: perturbable (gradients w.r.t. it) and sown into `intermediates`."""
    x = module.perturb(name, x)
    module.sow("intermediates", name, x)
    return x


def imagenet_preprocess(size: int, resample: str = "bilinear") -> Preprocess:
    """torchvision/timm ImageNet normalisation at `size` x `size`."""
    return Preprocess((size, size), IMAGENET_MEAN, IMAGENET_STD, resample)


def convert_torch(
    module: nn.Module,
    state_dict: Mapping[str, np.ndarray],
    *,
    prepare: Optional[Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]] = None,
    source: str = "state_dict",
) -> dict:
    """torch state_dict (numpy arrays, e.g. from `convert.pth.load_state_dict`) -> Flax
    variables for `module`, every key and shape checked (CheckpointMismatchError names the
    first bad key and its expected torch shape). `prepare` rewrites the state_dict first
    (VGG's classifier column order)."""
    sd = prepare(state_dict) if prepare is not None else state_dict
    return convert_state_dict(sd, variables_template(module, (64, 64)), dotted_key, source=source)


def param_count(module: nn.Module, input_hw: tuple[int, int] = (64, 64)) -> int:
    """Number of trainable parameters (the `params` collection), without allocating them."""
    return int(sum(np.prod(s.shape) for s in jax.tree_util.tree_leaves(variables_template(module, input_hw)["params"])))
