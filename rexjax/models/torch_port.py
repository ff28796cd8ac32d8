"""Shared conventions of the torchvision/timm ports (ResNet, VGG, RegNetY, EfficientNet-V2;
EfficientNet-Lite, with its own key mapping, uses the leaf names and feature-point helpers).

* Key naming: Flax module names mirror the torch module tree with '_' in place of '.'
  (none of the parameter-bearing torch module names of these families contains '_'), so one
  rule maps every Flax variable path to its torch state_dict key:

      ('params', 'layer2_0', 'downsample_1', 'scale')         -> 'layer2.0.downsample.1.weight'
      ('batch_stats', 's3', 'b4', 'conv2', 'bn', 'var')      -> 's3.b4.conv2.bn.running_var'
      ('params', 'features_4_0', 'block_2', 'fc1', 'kernel') -> 'features.4.0.block.2.fc1.weight'

  Layouts (OIHW -> HWIO, (out,in) -> (in,out)) and every key/shape check are done by
  `rexjax.models.convert.checks.convert_state_dict`.
* Feature points: `feature(module, name, x)` = `module.perturb` + `module.sow("intermediates")`
  (the registry's contract for Grad-CAM and ConvAD tests); `stage_feature_names` lists them,
  `pooled_logits` is the shared pool -> `pooled` -> Dense head, `check_rgb_batch` the input check.
* Preprocessing: ImageNet mean/std (0..255 units); the whole image is resized to the
  model's eval crop size (no resize-then-crop: explanations cover the whole image).
* Registry entry and converter: each family module sets `PORT = TorchPort(...)` and
  exposes `spec = PORT.spec`, `convert = PORT.convert`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models.convert.checks import convert_state_dict
from rexjax.models.model import ModelSpec, variables_template
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


def dotted_key_fn(words: tuple[str, ...] = (), leaves: Mapping[str, str] | None = None) -> Callable[[tuple[str, ...]], str]:
    """`dotted_key` for torch trees whose module names contain '_' (`conv_dw`, `Mixed_5b`):
    runs of '_'-separated tokens spelling one of `words` stay one torch name; `leaves` maps
    extra Flax leaf names to torch names (`{'layer_scale': 'layer_scale'}`)."""
    leaf_names = {**LEAF_NAMES, **(leaves or {})}
    split_words = sorted((w.split("_") for w in words), key=len, reverse=True)

    def key(path: tuple[str, ...]) -> str:
        if len(path) < 3 or path[-1] not in leaf_names:
            raise ValueError(f"not a zoo variable path: {path!r}")
        mods = []
        for m in path[1:-1]:
            tokens, i = m.split("_"), 0
            while i < len(tokens):
                n = next((len(w) for w in split_words if tokens[i : i + len(w)] == w), 1)
                mods.append("_".join(tokens[i : i + n]))
                i += n
        return ".".join(mods + [leaf_names[path[-1]]])

    return key


def feature(module: nn.Module, name: str, x: jax.Array) -> jax.Array:
    """Named feature point: perturbable (gradients w.r.t. it) and sown into `intermediates`."""
    x = module.perturb(name, x)
    module.sow("intermediates", name, x)
    return x


def check_rgb_batch(module: nn.Module, x: jax.Array) -> None:
    """The zoo modules' input contract: ValueError unless x is [B,H,W,3]."""
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{type(module).__name__} expects x[B,H,W,3], got shape {x.shape}")


def pooled_logits(module: nn.Module, x: jax.Array, num_classes: int, name: str) -> jax.Array:
    """Classifier head: x[B,H,W,C] -> global average pool -> feature point `pooled` ->
    Dense `name` -> logits[B,num_classes]. Call it from `module`'s compact method (the Dense
    binds to `module`, so its variables are `module`'s `name`)."""
    x = feature(module, "pooled", jnp.mean(x, axis=(1, 2)))
    return nn.Dense(num_classes, name=name)(x)


def stage_feature_names(stem: str, stage: str, n: int, *tail: str) -> tuple[str, ...]:
    """`(stem, <stage>1, .., <stage>n, *tail)`: the feature points of a staged network."""
    return (stem,) + tuple(f"{stage}{i + 1}" for i in range(n)) + tail


def imagenet_preprocess(size: int, resample: str = "bilinear") -> Preprocess:
    """torchvision/timm ImageNet normalisation at `size` x `size`."""
    return Preprocess((size, size), IMAGENET_MEAN, IMAGENET_STD, resample)


@dataclass(frozen=True)
class TorchPort:
    """One ported family: `spec(name)` is its registry entry, `convert(state_dict, config)`
    its checked torch state_dict -> Flax converter (keys by `dotted_key`).

    module: `module(config)` builds the Flax module (`module()` the default model);
    configs: model name -> config (with `num_classes` and `feature_names`, the module's
    feature points in execution order);
    size / resample: square eval input size and `imagenet_preprocess` resampling;
    description: format string (`{name}` = model name); prepare: `(state_dict, config) ->
    state_dict` rewrite applied before the key mapping (VGG's classifier column order);
    key_fn: Flax path -> torch key (`dotted_key`, or `dotted_key_fn(...)`); preprocess:
    overrides `imagenet_preprocess(size, resample)` (e.g. Inception's mean/std 0.5).
    """

    module: Callable[..., nn.Module]
    configs: Mapping[str, Any]
    size: int
    resample: str
    description: str
    prepare: Optional[Callable[[Mapping[str, np.ndarray], Any], Mapping[str, np.ndarray]]] = None
    key_fn: Callable[[tuple[str, ...]], str] = dotted_key
    preprocess: Optional[Preprocess] = None

    def _convert(self, state_dict: Mapping[str, np.ndarray], template: dict, config: Any, source: str) -> dict:
        sd = self.prepare(state_dict, config) if self.prepare is not None else state_dict
        return convert_state_dict(sd, template, self.key_fn, source=source)

    def convert(self, state_dict: Mapping[str, np.ndarray], config: Any = None) -> dict:
        """torch state_dict (numpy arrays, e.g. from `convert.pth.load_state_dict`) -> Flax
        variables of `module(config)` (default: the module's default config), every key and
        shape checked (CheckpointMismatchError names the first bad key and its expected
        torch shape)."""
        module = self.module() if config is None else self.module(config)
        template = variables_template(module, (self.size, self.size))  # parameters do not depend on it
        return self._convert(state_dict, template, module.config, f"{type(module).__name__} state_dict")

    def spec(self, name: str) -> ModelSpec:
        """The ModelSpec of `name` in `configs` (no bundled weights)."""
        cfg = self.configs[name]
        convert = None
        if self.prepare is not None:
            convert = lambda sd, template: self._convert(sd, template, cfg, f"{name} state_dict")  # noqa: E731
        return ModelSpec(
            name=name,
            make_module=lambda: self.module(cfg),
            input_size=(self.size, self.size),
            num_classes=cfg.num_classes,
            preprocess=self.preprocess or imagenet_preprocess(self.size, self.resample),
            key_fn=self.key_fn if convert is None else None,
            convert=convert,
            feature_names=cfg.feature_names,
            description=self.description.format(name=name),
        )
