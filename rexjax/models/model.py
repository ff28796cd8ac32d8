"""The loaded-model wrapper and its records: `ModelSpec` (how to build a zoo model),
`Model` (module + variables + preprocessing + labels; jitted and pure forward passes,
named feature maps), `ModelInfo` (one row of `list_models`), and `variables_template`
(variable shapes of a module via `jax.eval_shape`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models.convert.checks import KeyFn
from rexjax.models.labels import imagenet_short_labels
from rexjax.models.preprocess import ImageLike, Preprocess


@dataclass(frozen=True)
class ModelSpec:
    """How to build one zoo model.

    make_module: () -> flax Module mapping x f32[B,H,W,3] -> logits f32[B,K]. Feature points
      (Grad-CAM, ConvAD tests) call `self.sow("intermediates", name, x)` and
      `x = self.perturb(name, x)` in the top-level module; list them in `feature_names`.
    key_fn: Flax variable path (e.g. ('params','fc','kernel')) -> torch state_dict key; the
      layout (OIHW->HWIO, (out,in)->(in,out)) and every shape are checked by
      `convert.checks.convert_state_dict`. Set `convert` instead for custom mappings:
      `convert(state_dict, template) -> variables`.
    default_weights: () -> path of bundled weights, or None when none are installed.
    """

    name: str
    make_module: Callable[[], nn.Module]
    input_size: tuple[int, int]
    num_classes: int = 1000
    preprocess: Optional[Preprocess] = None  # default: Preprocess(input_size) = Lite contract
    key_fn: Optional[KeyFn] = None
    convert: Optional[Callable[[Mapping[str, np.ndarray], Any], dict]] = None
    default_weights: Optional[Callable[[], Optional[str]]] = None
    labels: Callable[[], Sequence[str]] = imagenet_short_labels
    feature_names: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, eq=False)
class Model:
    """A loaded model. `apply_fn(variables, x[B,H,W,C]) -> logits[B,K]` is pure and
    un-jitted (ConvAD traces it); `model(x)` is the jitted apply with `self.variables`."""

    name: str
    module: nn.Module
    variables: dict
    input_size: tuple[int, int]
    num_classes: int
    labels: tuple[str, ...]
    has_weights: bool
    preprocessing: Preprocess
    feature_names: tuple[str, ...]
    weights_path: Optional[str] = None
    _jit_apply: Callable = field(init=False, repr=False)
    _jit_features: Callable = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_jit_apply", jax.jit(self.apply_fn))
        object.__setattr__(self, "_jit_features", jax.jit(lambda v, x: self.features_fn(v, x)))

    def apply_fn(self, variables: Mapping, x: jax.Array) -> jax.Array:
        """Pure forward pass: x f32[B,H,W,C] (model input space) -> logits f32[B,K]."""
        return self.module.apply(variables, x)

    def features_fn(self, variables: Mapping, x: jax.Array, perturbations: Optional[Mapping] = None):
        """Pure: -> (logits[B,K], {feature name: array}). With `perturbations` (a dict of
        zeros shaped like the features), `jax.grad` w.r.t. it gives d(out)/d(feature)."""
        v = dict(variables)
        if perturbations is not None:
            v["perturbations"] = perturbations
        logits, state = self.module.apply(v, x, mutable=["intermediates"])
        inter = state.get("intermediates", {})
        return logits, {k: val[0] for k, val in inter.items()}

    def _check_input(self, x) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"{self.name}: x must be f32[B,H,W,3] in model input space, got shape {x.shape}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"{self.name}: x must be floating point (model input space), got {x.dtype}")
        return x

    def __call__(self, x: jax.Array) -> jax.Array:
        """x f32[B,H,W,3] -> logits f32[B,K] (jitted)."""
        return self._jit_apply(self.variables, self._check_input(x))

    def features(self, x: jax.Array, names: Optional[Sequence[str]] = None) -> dict[str, jax.Array]:
        """Named intermediate feature maps (default: all of `feature_names`) for x f32[B,H,W,3]."""
        names = self.feature_names if names is None else tuple([names] if isinstance(names, str) else names)
        bad = [n for n in names if n not in self.feature_names]
        if bad:
            raise ValueError(f"{self.name}: unknown feature names {bad}; known: {list(self.feature_names)}")
        _, feats = self._jit_features(self.variables, self._check_input(x))
        return {n: feats[n] for n in names}

    def preprocess(self, image: ImageLike) -> np.ndarray:
        """Path / PIL image / uint8 array -> f32[H,W,3] in this model's input space."""
        return self.preprocessing(image)

    def at_size(self, height: int, width: Optional[int] = None) -> "Model":
        """The same model (same variables) fed `height` x `width` images (square by default):
        its preprocessing resizes to that size. Convolutional models take any size their pools
        allow; ViTs need whole patches and resample their position embeddings (timm's dynamic
        image size). ValueError naming `input_size` when the module refuses the size (checked
        by shape inference, no forward pass)."""
        width = height if width is None else width
        size = (int(height), int(width))
        if min(size) < 1:
            raise ValueError(f"{self.name}: input_size must be positive, got {size[0]}x{size[1]}")
        if size == tuple(self.input_size):
            return self
        try:
            jax.eval_shape(self.apply_fn, self.variables, jax.ShapeDtypeStruct((1, *size, 3), jnp.float32))
        except Exception as err:  # the module's own refusal (patch multiple, pool too large, ...)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"{self.name}: input_size {size[0]}x{size[1]} is not accepted by the model: {first}") from err
        return replace(self, input_size=size, preprocessing=replace(self.preprocessing, size=size))

    @property
    def param_count(self) -> int:
        return int(sum(np.prod(np.shape(a)) for a in jax.tree_util.tree_leaves(self.variables.get("params", {}))))


@dataclass(frozen=True)
class ModelInfo:
    name: str
    input_size: tuple[int, int]
    num_classes: int
    param_count: int
    has_weights: bool
    description: str
    preprocessing: str = ""  # `Preprocess.describe()`: resample, size, mean, std


def variables_template(module: nn.Module, input_size: tuple[int, int]) -> dict:
    """Shapes of `module`'s variables (params, batch_stats) for x f32[1,H,W,3], via
    `jax.eval_shape` (nothing computed or allocated)."""
    x = jax.ShapeDtypeStruct((1, *input_size, 3), jnp.float32)
    shapes = jax.eval_shape(module.init, jax.random.key(0), x)
    return {k: v for k, v in shapes.items() if k not in ("perturbations", "intermediates")}
