"""`Classifier`: the one view of a model every method and metric uses.

    clf = Classifier.of("efficientnet_lite0")          # a zoo name, a zoo Model, or ...
    clf = Classifier.of(my_fn)                         # ... any batched x[B,H,W,C] -> logits[B,K]
    clf.logits(xb)        f32[B, K]   the model's logits (log-probabilities if outputs="probs")
    clf.probs(xb)         f32[B, K]   probabilities (softmax once, never twice)
    clf.full_probs(x)     f32[K]      the unmasked image's probabilities (jitted, x f32[H,W,C])
    clf.num_classes_for(x)            K, by shape inference (no model call)
    clf.masked(mode)      MaskedClassifier (x, masks[B,H,W]) -> probs[B,K]; "ad" = ConvAD
    clf.features(layer)   features_and_logits(xb, delta) -> (feat[B,h,w,c], logits[B,K])
    clf.preprocess(path)  f32[H, W, C] in the model's input space (zoo models)

`outputs="probs"` declares a model that already returns probabilities: it is not softmaxed
again (its logits are `log(p)`, so softmax(logits) = p). Everything derived from a
Classifier (masked views, features) is built once and cached on it, so jitted methods that
take them as static arguments compile once per classifier.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rexjax import checks
from rexjax.masking import MaskMode, deactivated, painted, parse_mask_mode
from rexjax.types import MaskedClassifier

OUTPUTS = ("logits", "probs")


class Classifier:
    """One view of a model (see module doc). Build with `Classifier.of(model)`.

    model: a zoo `rexjax.models.Model` or a batched callable `x[B,H,W,C] -> [B,K]`.
    outputs: "logits" (default) or "probs" (the model returns probabilities).
    features: optional `features_and_logits(xb, delta)` for a plain callable (Grad-CAM); zoo
        models expose theirs through `features(layer)`.
    preprocess: optional `image -> f32[H,W,C]` (zoo models bring their own).
    labels: optional class names.
    """

    def __init__(
        self,
        model: Callable,
        *,
        outputs: str = "logits",
        features: Optional[Callable] = None,
        preprocess: Optional[Callable] = None,
        labels: Optional[Sequence[str]] = None,
        name: Optional[str] = None,
    ):
        if not callable(model):
            raise ValueError(f"model must be a zoo name, a zoo Model or a batched callable, got {type(model).__name__}")
        checks.one_of("outputs", outputs, OUTPUTS)
        self.model = model
        self.outputs = outputs
        self.name = name or getattr(model, "name", None) or getattr(model, "__name__", type(model).__name__)
        self.labels = tuple(labels) if labels is not None else getattr(model, "labels", None)
        self._features_fn = features
        self._preprocess = preprocess or getattr(model, "preprocess", None)
        self._masked: dict = {}
        self._features: dict = {}
        self._num_classes: dict = {}
        self._memo: dict = {}
        self._full = jax.jit(self._full_probs)

    @classmethod
    def of(cls, model: Any, **options) -> "Classifier":
        """A Classifier from a zoo name, a zoo Model, a Classifier (returned as is) or a callable."""
        if isinstance(model, Classifier):
            if options:
                raise ValueError(f"model is already a Classifier; options {sorted(options)} cannot be applied")
            return model
        if isinstance(model, str):
            from rexjax import models

            model = models.load(model)
        return cls(model, **options)

    # --- scores -------------------------------------------------------------------------
    def logits(self, xb: jax.Array) -> jax.Array:
        """x f32[B,H,W,C] -> f32[B,K]: the model's logits (log-probabilities if outputs="probs")."""
        out = self.model(xb)
        return jnp.log(out) if self.outputs == "probs" else out

    def probs(self, xb: jax.Array) -> jax.Array:
        """x f32[B,H,W,C] -> f32[B,K] probabilities (softmax of logits, or the model's own)."""
        out = self.model(xb)
        return out if self.outputs == "probs" else jax.nn.softmax(out, axis=-1)

    def full_probs(self, x: jax.Array) -> jax.Array:
        """Probabilities f32[K] of the whole image x f32[H,W,C] (jitted; the only place they
        are computed)."""
        return self._full(x)

    def _full_probs(self, x: jax.Array) -> jax.Array:
        chex.assert_rank(x, 3)
        probs = self.probs(x[None])
        chex.assert_rank(probs, 2)
        return probs[0]

    def num_classes_for(self, x: jax.Array) -> int:
        """K for images shaped like x f32[H,W,C] (shape inference only, no model call)."""
        shape = tuple(x.shape)
        if shape not in self._num_classes:
            out = jax.eval_shape(self.model, jax.ShapeDtypeStruct((1,) + shape, x.dtype))
            if len(out.shape) != 2:
                raise ValueError(f"model must return scores [B, K], got shape {out.shape}")
            self._num_classes[shape] = int(out.shape[1])
        return self._num_classes[shape]

    @property
    def num_classes(self) -> Optional[int]:
        """K when the model declares it (zoo models), else None (see `num_classes_for`)."""
        return getattr(self.model, "num_classes", None)

    def check(self, x, target, name: str = "x") -> tuple[jax.Array, int]:
        """Validated (x f32[H,W,C], target int) for this model."""
        x = checks.image(x, name)
        return x, checks.target(target, self.num_classes_for(x))

    def label(self, target: int) -> Optional[str]:
        """The class name of `target`, or None."""
        return self.labels[target] if self.labels is not None and 0 <= target < len(self.labels) else None

    # --- views ---------------------------------------------------------------------------
    def memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """`build()` once per hashable `key`, kept on this Classifier: what higher layers
        derive from a model (ReX's compiled explainers) lives and dies with the object the
        caller holds, never in a module-level cache."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def masked(self, mask_mode: MaskMode = 0.0, **ad_options) -> MaskedClassifier:
        """The MaskedClassifier for `mask_mode` (cached: the same object on every call)."""
        mode = parse_mask_mode(mask_mode)
        cache_key = (mode, tuple(sorted(ad_options.items())))
        if cache_key not in self._masked:
            if mode == "ad":
                if not (hasattr(self.model, "apply_fn") and hasattr(self.model, "variables")):
                    raise ValueError(
                        "mask_mode='ad' needs a Flax model with `apply_fn` and `variables` "
                        "(e.g. rexjax.models.load(name)); a plain callable can only be painted"
                    )
                to_probs = (lambda z: z) if self.outputs == "probs" else (lambda z: jax.nn.softmax(z, axis=-1))
                self._masked[cache_key] = deactivated(self.model.apply_fn, self.model.variables, to_probs, **ad_options)
            else:
                if ad_options:
                    raise ValueError(f"ConvAD options {sorted(ad_options)} need mask_mode='ad', got {mode!r}")
                self._masked[cache_key] = painted(self.probs, mode)
        return self._masked[cache_key]

    @property
    def has_features(self) -> bool:
        return self._features_fn is not None or hasattr(self.model, "features_fn")

    def features(self, layer: Optional[str] = None) -> Callable:
        """`features_and_logits(xb, delta) -> (feat f32[B,h,w,c], logits f32[B,K])` at `layer`.

        `delta` (None or shaped like feat) is added to the feature map before the rest of
        the network runs, so d logits / d delta at 0 is d logits / d feat (Grad-CAM).
        Zoo models: `layer` is one of their feature points (default: the last spatial one).
        """
        if layer not in self._features:
            if self._features_fn is not None:
                if layer is not None:
                    raise ValueError("layer must be None for a Classifier built with features=...")
                self._features[layer] = self._features_fn
            elif hasattr(self.model, "features_fn"):
                self._features[layer] = zoo_features_and_logits(self.model, layer)
            else:
                raise ValueError(
                    "this model exposes no feature maps (Grad-CAM): use a zoo model or build "
                    "Classifier(fn, features=features_and_logits)"
                )
        return self._features[layer]

    # --- images --------------------------------------------------------------------------
    @property
    def has_preprocess(self) -> bool:
        return self._preprocess is not None

    def preprocess(self, image) -> np.ndarray:
        """A path / PIL image -> f32[H, W, C] in the model's input space."""
        if self._preprocess is None:
            raise ValueError("image paths need a model with preprocessing (a zoo model); pass an array")
        return self._preprocess(image)

    def prepare(self, image) -> jax.Array:
        """Path / PIL image / array -> validated f32[H, W, C] in the model's input space."""
        if isinstance(image, (str, os.PathLike)) or type(image).__module__.startswith("PIL"):
            image = self.preprocess(image)
        x = checks.finite_image(image)
        if self.has_preprocess and x.shape[-1] != 3:
            raise ValueError(f"image must have 3 channels (NHWC RGB), got shape {x.shape}")
        return x

    def __repr__(self) -> str:
        return f"Classifier({self.name!r}, outputs={self.outputs!r})"


def last_spatial_feature(model) -> str:
    """Name of the last feature map of a zoo model with spatial extent > 1 (Grad-CAM's layer)."""
    x = jnp.zeros((1,) + tuple(model.input_size) + (3,), jnp.float32)
    _, feats = jax.eval_shape(lambda z: model.features_fn(model.variables, z), x)
    spatial = [n for n in model.feature_names if len(feats[n].shape) == 4 and feats[n].shape[1] * feats[n].shape[2] > 1]
    if not spatial:
        raise ValueError(f"{model.name}: no spatial feature map among {model.feature_names}")
    return spatial[-1]


def zoo_features_and_logits(model, layer: Optional[str] = None) -> Callable:
    """`features_and_logits(xb, delta)` for a zoo Model at feature point `layer` (default:
    `last_spatial_feature`); `delta` goes in through the zoo's `perturb` hooks."""
    layer = layer or last_spatial_feature(model)
    if layer not in model.feature_names:
        raise ValueError(f"layer must be one of {model.feature_names}, got {layer!r}")

    def features_and_logits(xb, delta):
        pert = None
        if delta is not None:  # Flax wants every perturbation point: zeros except `layer`
            _, shapes = jax.eval_shape(lambda z: model.features_fn(model.variables, z), xb)
            pert = {n: jnp.zeros(s.shape, s.dtype) for n, s in shapes.items()}
            pert[layer] = delta
        logits, feats = model.features_fn(model.variables, xb, pert)
        return feats[layer], logits

    return features_and_logits
