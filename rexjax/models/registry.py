"""Model registry: `register(name, builder)`, `load(name, weights)`, `list_models()`.

A *builder* is a zero-argument callable returning a `ModelSpec` (cheap: no weights are
read). `load` turns a spec into a `Model` (module + variables + preprocessing + labels):
weights come from `weights=PATH` (a torch `.pth` state_dict, read without torch) or the
spec's bundled default; converted variables are cached with orbax-checkpoint under
`$REXJAX_CACHE_DIR` (default `~/.cache/rexjax`), keyed by source path, size and mtime.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rexjax.models.convert.checks import KeyFn, convert_state_dict
from rexjax.models.convert.pth import load_state_dict
from rexjax.models.labels import imagenet_short_labels
from rexjax.models.preprocess import ImageLike, Preprocess

CONVERTER_VERSION = 1  # bump when a conversion changes, to invalidate caches
_REGISTRY: dict[str, Callable[[], "ModelSpec"]] = {}


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

    @property
    def param_count(self) -> int:
        return int(sum(np.prod(np.shape(a)) for a in jax.tree_util.tree_leaves(self.variables.get("params", {}))))

    def predict(self, images: Sequence[ImageLike]) -> list[tuple[int, str, float]]:
        """Convenience: top-1 (class id, short label, probability) per image."""
        x = np.stack([self.preprocess(im) for im in images])
        probs = np.asarray(jax.nn.softmax(self(x), axis=-1))
        ids = probs.argmax(-1)
        return [(int(i), self.labels[int(i)], float(p[i])) for i, p in zip(ids, probs)]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    input_size: tuple[int, int]
    num_classes: int
    param_count: int
    has_weights: bool
    description: str


def register(name: str, builder: Callable[[], ModelSpec], *, overwrite: bool = False) -> None:
    """Adds a model: `builder()` returns its ModelSpec. See `rexjax.models` for a recipe."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if not callable(builder):
        raise ValueError(f"builder for {name!r} must be a callable returning a ModelSpec")
    if name in _REGISTRY and not overwrite and _REGISTRY[name] is not builder:
        raise ValueError(f"model {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = builder


def _ensure_zoo() -> None:
    from rexjax.models import _import_zoo

    _import_zoo()


def known_models() -> list[str]:
    _ensure_zoo()
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    _ensure_zoo()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    spec = _REGISTRY[name]()
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"builder for {name!r} returned {type(spec).__name__}, not a ModelSpec")
    return spec


def _template(module: nn.Module, input_size: tuple[int, int]) -> dict:
    x = jax.ShapeDtypeStruct((1, *input_size, 3), jnp.float32)
    shapes = jax.eval_shape(lambda k, x: module.init(k, x), jax.random.key(0), x)
    return {k: v for k, v in shapes.items() if k not in ("perturbations", "intermediates")}


def cache_dir() -> Path:
    return Path(os.environ.get("REXJAX_CACHE_DIR") or Path.home() / ".cache" / "rexjax").expanduser().resolve()


def _cache_path(name: str, weights: str) -> Path:
    st = os.stat(weights)
    ident = f"{os.path.realpath(weights)}|{st.st_size}|{st.st_mtime_ns}|{name}|v{CONVERTER_VERSION}"
    return cache_dir() / f"{name}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


@contextlib.contextmanager
def _quiet_orbax():
    """orbax logs a dozen INFO lines per save/restore through absl; keep CLIs readable."""
    from absl import logging as absl_logging

    logger = absl_logging.get_absl_logger()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _restore_cached(path: Path, template: dict) -> Optional[dict]:
    if not path.is_dir():
        return None
    import orbax.checkpoint as ocp

    try:
        with _quiet_orbax(), ocp.StandardCheckpointer() as ckpt:
            restored = ckpt.restore(path, jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template))
    except Exception as e:  # a corrupt cache entry is rebuilt, never trusted
        warnings.warn(f"ignoring unreadable weights cache {path} ({e})")
        return None
    ok = jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(template) and all(
        a.shape == b.shape for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(template))
    )
    return restored if ok else None


def _save_cache(path: Path, variables: dict) -> None:
    import orbax.checkpoint as ocp

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _quiet_orbax(), ocp.StandardCheckpointer() as ckpt:
            ckpt.save(path, variables, force=True)
            ckpt.wait_until_finished()
    except Exception as e:  # caching is an optimisation; a read-only cache dir is not fatal
        warnings.warn(f"could not cache converted weights at {path} ({e})")


def convert_weights(spec: ModelSpec, weights: str, template: dict) -> dict:
    """Reads a torch .pth state_dict and converts it to `template`'s structure (all checked)."""
    state_dict = load_state_dict(weights)
    if spec.convert is not None:
        return spec.convert(state_dict, template)
    if spec.key_fn is None:
        raise ValueError(f"model {spec.name!r} has no torch weight converter")
    return convert_state_dict(state_dict, template, spec.key_fn, source=f"weights file {weights!r}")


def load(name: str, weights: Optional[str | os.PathLike] = None, *, use_cache: bool = True, seed: int = 0) -> Model:
    """Loads a zoo model by name.

    weights: None -> the model's bundled weights if installed, else random init (with a
    warning); a path -> that torch `.pth` state_dict (zip or legacy format). Converted
    variables are cached (orbax) and reused while the source file is unchanged.
    """
    spec = get_spec(name)
    module = spec.make_module()
    template = _template(module, spec.input_size)
    path = os.fspath(weights) if weights is not None else (spec.default_weights() if spec.default_weights else None)
    if weights is not None and not os.path.isfile(path):
        raise ValueError(f"weights file {path!r} does not exist")
    if path is None:
        warnings.warn(
            f"{name}: no weights found; initialising randomly (seed {seed}). Pass weights=PATH "
            "to a torch state_dict (.pth) for real predictions.",
            stacklevel=2,
        )
        variables = module.init(jax.random.key(seed), jnp.zeros((1, *spec.input_size, 3), jnp.float32))
        variables = {k: v for k, v in variables.items() if k in template}
    else:
        variables = None
        cpath = _cache_path(name, path)
        if use_cache:
            variables = _restore_cached(cpath, template)
        if variables is None:
            variables = convert_weights(spec, path, template)
            if use_cache:
                _save_cache(cpath, variables)
        variables = jax.tree_util.tree_map(jnp.asarray, variables)
    labels = tuple(spec.labels())
    if len(labels) != spec.num_classes:
        raise ValueError(f"{name}: {len(labels)} labels for {spec.num_classes} classes")
    return Model(
        name=name,
        module=module,
        variables=variables,
        input_size=tuple(spec.input_size),
        num_classes=spec.num_classes,
        labels=labels,
        has_weights=path is not None,
        preprocessing=spec.preprocess or Preprocess(tuple(spec.input_size)),
        feature_names=tuple(spec.feature_names),
        weights_path=path,
    )


def list_models(names: Optional[Sequence[str]] = None) -> list[ModelInfo]:
    """One ModelInfo per registered model (or per name in `names`); parameter counts come
    from `jax.eval_shape` (no weights are read or allocated)."""
    out = []
    for name in known_models() if names is None else names:
        spec = get_spec(name)
        template = _template(spec.make_module(), spec.input_size)
        count = int(sum(np.prod(s.shape) for s in jax.tree_util.tree_leaves(template.get("params", {}))))
        has = bool(spec.default_weights and spec.default_weights())
        out.append(ModelInfo(name, tuple(spec.input_size), spec.num_classes, count, has, spec.description))
    return out
