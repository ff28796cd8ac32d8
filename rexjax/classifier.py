"""`Classifier`: the one view of a model every method and metric uses.

    clf = Classifier.of("efficientnet_lite0")          # a zoo name, a zoo Model, or ...
    clf = Classifier.of(my_fn)                         # ... any batched JAX x[B,H,W,C] -> logits[B,K]
    clf = Classifier.from_callable(np_fn, (H, W, C))   # ... any NumPy fn (torch, onnxruntime): a black box
    clf.logits(xb)        f32[B, K]   the model's logits (log-probabilities if outputs="probs")
    clf.probs(xb)         f32[B, K]   probabilities (softmax once, never twice)
    clf.full_probs(x)     f32[K]      the unmasked image's probabilities (jitted, x f32[H,W,C])
    clf.predicted_class(p) int        the class decided on full_probs p: the default target
    clf.num_classes_for(x)            K, by shape inference (no model call)
    clf.masked(mode)      MaskedClassifier (x, masks[B,H,W]) -> probs[B,K]; "ad" = ConvAD
    clf.features(layer)   features_and_logits(xb, delta) -> (feat[B,h,w,c], logits[B,K])
    clf.require_gradients(method)     ValueError naming `method` if the model has no gradients
    clf.preprocess(path)  f32[H, W, C] in the model's input space (zoo models)

`outputs="probs"` declares a model that already returns probabilities: it is not softmaxed
again (its logits are `log(p)`, so softmax(logits) = p). Everything derived from a
Classifier (masked views, features) is built once and cached on it, so jitted methods that
take them as static arguments compile once per classifier.

Black boxes (`from_callable`, `rexjax.black_box`): a host function reached through
`jax.pure_callback`; every black-box method works on it (rex, rise, shape, occlusion, lime,
kernel_shap, noise_tunnel around one of them, the metrics); methods that differentiate the
model and mask_mode="ad" refuse it with one line (`require_gradients`).

Binary models (`binary_threshold=t`, `rexjax.binary`): a model with ONE output column (a
probability, or a logit) is presented as two classes [negative, positive] whose argmax is
the decision p >= t, so every method and metric works unchanged and the default target is
the decided side; a one-column model without `binary_threshold` is refused.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rexjax import binary, checks
from rexjax.black_box import BlackBox
from rexjax.masking import MaskMode, deactivated, painted, parse_mask_mode
from rexjax.types import MaskedClassifier

OUTPUTS = ("logits", "probs")
# The registered methods that only evaluate the model (named in the gradient refusal).
BLACK_BOX_METHODS = ("rex", "rise", "shape", "occlusion", "lime", "kernel_shap")


class Classifier:
    """One view of a model (see module doc). Build with `Classifier.of(model)`.

    model: a zoo `rexjax.models.Model` or a batched callable `x[B,H,W,C] -> [B,K]`.
    outputs: "logits" (default) or "probs" (the model returns probabilities).
    features: optional `features_and_logits(xb, delta)` for a plain callable (Grad-CAM); zoo
        models expose theirs through `features(layer)`.
    preprocess: optional `image -> f32[H,W,C]` (zoo models bring their own).
    labels: optional class names.
    binary_threshold: t in (0, 1) for a model with one output column (module doc).
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
        binary_threshold: Optional[float] = None,
    ):
        if not callable(model):
            raise ValueError(f"model must be a zoo name, a zoo Model or a batched callable, got {type(model).__name__}")
        checks.one_of("outputs", outputs, OUTPUTS)
        self.model = model
        self.outputs = outputs
        self.binary_threshold = None if binary_threshold is None else binary.check_threshold(binary_threshold)
        self.black_box = isinstance(model, BlackBox)
        self.name = name or getattr(model, "name", None) or getattr(model, "__name__", type(model).__name__)
        self.labels = tuple(labels) if labels is not None else getattr(model, "labels", None)
        self._features_fn = features
        self._preprocess = preprocess or getattr(model, "preprocess", None)
        self._masked: dict = {}
        self._features: dict = {}
        self._num_classes: dict = {}
        self._memo: dict = {}
        self._full = jax.jit(self._full_probs)
        declared = getattr(model, "num_classes", None)
        if declared is not None:
            self._check_columns(declared)

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

    @classmethod
    def from_callable(
        cls,
        fn: Callable,
        input_shape: Sequence[int],
        *,
        outputs: str = "logits",
        batch_size: Optional[int] = None,
        num_classes: Optional[int] = None,
        name: Optional[str] = None,
        labels: Optional[Sequence[str]] = None,
        binary_threshold: Optional[float] = None,
    ) -> "Classifier":
        """A black box: `fn(x f32[n, *input_shape] numpy) -> scores[n, K]` (torch under no_grad,
        onnxruntime, predict_proba, ...) as a Classifier, through `jax.pure_callback`
        (`rexjax.black_box.BlackBox`: whole batches, `batch_size` rows per call of fn at most,
        works under jit and vmap). K comes from one call of fn on a zero input unless
        `num_classes` is given; wrong shapes, dtypes or non-finite scores are ValueErrors
        naming fn. No gradients: gradient methods and mask_mode="ad" refuse it."""
        box = BlackBox(fn, input_shape, outputs=outputs, batch_size=batch_size, num_classes=num_classes, name=name)
        clf = cls(box, outputs=outputs, labels=labels, name=box.name, binary_threshold=binary_threshold)
        if labels is not None and len(clf.labels) != clf.num_classes:
            raise ValueError(f"labels: {len(clf.labels)} names for {clf.num_classes} classes")
        return clf

    # --- scores -------------------------------------------------------------------------
    def logits(self, xb: jax.Array) -> jax.Array:
        """x f32[B,H,W,C] -> f32[B,K]: the model's logits (log-probabilities if outputs="probs";
        a binary model's [0, margin], `rexjax.binary`)."""
        out = self.model(xb)
        self._check_columns(out.shape[-1])
        if self.binary_threshold is not None:
            return binary.logits(out, self.outputs, self.binary_threshold)
        return jnp.log(out) if self.outputs == "probs" else out

    def probs(self, xb: jax.Array) -> jax.Array:
        """x f32[B,H,W,C] -> f32[B,K] probabilities (softmax of logits, or the model's own)."""
        return self._to_probs(self.model(xb))

    def _to_probs(self, out: jax.Array) -> jax.Array:
        """The model's outputs f32[B,K'] -> probabilities f32[B,K] (K = 2 for a binary model)."""
        self._check_columns(out.shape[-1])
        if self.binary_threshold is not None:
            return binary.probs(out, self.outputs, self.binary_threshold)
        return out if self.outputs == "probs" else jax.nn.softmax(out, axis=-1)

    def _check_columns(self, k: int) -> None:
        """A one-column model needs binary_threshold, and binary_threshold needs one column."""
        if self.binary_threshold is not None and k != 1:
            raise ValueError(f"binary_threshold needs a model with one output column, {self.name} has {k}")
        if self.binary_threshold is None and k == 1:
            raise ValueError(f"{self.name} has one output column (a binary classifier): pass binary_threshold=t, "
                             "e.g. 0.5, to decide positive when p >= t")

    def predicted_class(self, probs) -> int:
        """The class the model decides on, given `probs` f32[K] = `full_probs(x)`: the top-1; for
        a binary model that is the thresholded side (`rexjax.binary`). The default target of
        every method (the one rule)."""
        return int(np.argmax(np.asarray(probs)))

    def full_probs(self, x: jax.Array) -> jax.Array:
        """Probabilities f32[K] of the whole image x f32[H,W,C] (jitted; the only place they
        are computed)."""
        return self._full(x)

    def _full_probs(self, x: jax.Array) -> jax.Array:
        chex.assert_rank(x, set(checks.INPUT_RANKS))
        probs = self.probs(x[None])
        chex.assert_rank(probs, 2)
        return probs[0]

    def num_classes_for(self, x: jax.Array) -> int:
        """K for images shaped like x f32[H,W,C] (shape inference only, no model call)."""
        shape = tuple(x.shape)
        if shape not in self._num_classes:
            try:  # a batch of 2: a model that only works for B = 1 fails here, not in a method
                out = jax.eval_shape(self.model, jax.ShapeDtypeStruct((2,) + shape, x.dtype))
            except (TypeError, ValueError) as e:
                raise ValueError(f"model does not take inputs of shape {shape} (rank {len(shape)}; images are "
                                 f"[H, W, C], rank 3): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
            if len(out.shape) != 2 or out.shape[0] != 2:
                raise ValueError(f"model must return scores [B, K], got shape {out.shape} for a batch of 2")
            self._check_columns(int(out.shape[1]))
            self._num_classes[shape] = 2 if self.binary_threshold is not None else int(out.shape[1])
        return self._num_classes[shape]

    @property
    def num_classes(self) -> Optional[int]:
        """K when the model declares it (zoo models, black boxes; 2 for a binary model), else None
        (see `num_classes_for`)."""
        if self.binary_threshold is not None:
            return 2
        return getattr(self.model, "num_classes", None)

    def check(self, x, target, name: str = "x", ranks=(3,)) -> tuple[jax.Array, int]:
        """Validated (x f32[H,W,C], target int) for this model; `ranks`: the ranks of x taken
        (`checks.INPUT_RANKS`: also signals [N, C] and volumes [D, H, W, C])."""
        x = checks.image(x, name, ranks)
        return x, checks.target(target, self.num_classes_for(x))

    def label(self, target: int) -> Optional[str]:
        """The class name of `target`, or None."""
        return self.labels[target] if self.labels is not None and 0 <= target < len(self.labels) else None

    def require_gradients(self, method: str) -> None:
        """ValueError naming `method` when the model has no gradients (a black box); call it
        before tracing anything that differentiates the model."""
        if self.black_box:
            raise ValueError(f"{method} needs gradients of the model; a black box (Classifier.from_callable, an ONNX "
                             f"model under onnxruntime) has none: use {', '.join(BLACK_BOX_METHODS)}")

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
                if self.black_box:
                    raise ValueError("mask_mode='ad' needs the model's layers (ConvAD deactivates activations inside "
                                     "it); a black box (Classifier.from_callable, an ONNX model under onnxruntime) "
                                     "has none: use a fill value such as mask_mode=0.0, 'mean' or 'blur'")
                if not (hasattr(self.model, "apply_fn") and hasattr(self.model, "variables")):
                    raise ValueError(
                        "mask_mode='ad' needs a Flax model with `apply_fn` and `variables` "
                        "(e.g. rexjax.models.load(name)); a plain callable can only be painted"
                    )
                self._masked[cache_key] = deactivated(self.model.apply_fn, self.model.variables, self._to_probs,
                                                      **ad_options)
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
        channels = getattr(self.model, "channels", 3)
        if self.has_preprocess and x.shape[-1] != channels:
            raise ValueError(f"image must have the model's {channels} channels (NHWC), got shape {x.shape}")
        return x

    def __repr__(self) -> str:
        binary_part = "" if self.binary_threshold is None else f", binary_threshold={self.binary_threshold}"
        return f"Classifier({self.name!r}, outputs={self.outputs!r}{binary_part})"


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
