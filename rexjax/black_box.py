"""`BlackBox`: any Python function on NumPy batches as a JAX model, through `jax.pure_callback`.

    model = BlackBox(fn, (H, W, C), outputs="probs", batch_size=32)
    model(xb)       x f32[B, H, W, C] -> f32[B, K]      (eager, under jit and under vmap)

`fn(x f32[n, *input_shape]) -> scores[n, K]` is any host function: torch under no_grad,
onnxruntime, scikit-learn's predict_proba, plain NumPy. It gets whole batches: under `vmap`
(`vmap_method="broadcast_all"`) the mapped axes are folded into the batch on the host, so
fn sees x[V * B, ...], never one row at a time. With `batch_size`, fn is called on at most
`batch_size` rows at a time (the last call gets the remainder, no padding). `x` is a
read-only view of JAX's buffer (copy it to write). fn runs on the host (on an accelerator,
after a device -> host copy), possibly on one of XLA's threads rather than the caller's.

fn's answers are checked on every call: a 2-D array [n, K] of real numbers, finite, and in
[0, 1] when `outputs="probs"`; anything else is one ValueError naming fn, the shape it was
given and the shape it returned. At construction fn is called once on one zero input to find
K (skipped when `num_classes` is given), so a broken fn fails there, as a ValueError. A fault
that appears only later, inside a compiled method, reaches the caller as jax's
`JaxRuntimeError` carrying that ValueError's line (JAX re-raises callback errors as its own).

A BlackBox has no gradients and no layers: `Classifier` refuses gradient methods and
mask_mode="ad" on it (`Classifier.require_gradients`). Wrap one with
`Classifier.from_callable`, which builds this.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rexjax import checks


class BlackBox:
    """A host function `fn(x f32[n, *input_shape]) -> [n, K]` as a batched JAX callable (module doc).

    input_shape: the per-example shape (H, W, C) for images; other ranks are accepted here.
    outputs: "logits" or "probs" (probabilities are checked to lie in [0, 1]).
    batch_size: the most rows per call of fn (None: the whole batch at once).
    num_classes: K, when known (skips the probe call of fn).
    name: the model's name (default: fn's `__name__`).
    """

    def __init__(self, fn: Callable, input_shape: Sequence[int], *, outputs: str = "logits",
                 batch_size: Optional[int] = None, num_classes: Optional[int] = None, name: Optional[str] = None):
        if not callable(fn):
            raise ValueError(f"fn must be a callable on NumPy batches, got {type(fn).__name__}")
        self.input_shape = _shape(input_shape)
        checks.one_of("outputs", outputs, ("logits", "probs"))
        if batch_size is not None:
            checks.positive_int(batch_size=batch_size)
        self.fn = fn
        self.outputs = outputs
        self.batch_size = None if batch_size is None else int(batch_size)
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        if num_classes is None:
            probe = np.zeros((1,) + self.input_shape, np.float32)
            try:
                answer = fn(probe)
            except Exception as err:
                first = (str(err).strip().splitlines() or [""])[0]
                raise ValueError(f"fn ({self.name}) failed on one zero input x{list(probe.shape)}: "
                                 f"{type(err).__name__}: {first}") from err
            num_classes = self._answer(probe, answer, None).shape[1]
        else:
            checks.positive_int(num_classes=num_classes)
        self.num_classes = int(num_classes)
        if len(self.input_shape) == 3:
            self.channels = self.input_shape[-1]

    def __call__(self, xb: jax.Array) -> jax.Array:
        """x f32[B, *input_shape] -> f32[B, K] (a host call; no gradients)."""
        xb = jnp.asarray(xb)
        if tuple(xb.shape[1:]) != self.input_shape or xb.ndim != len(self.input_shape) + 1:
            raise ValueError(f"{self.name}: fn takes x[B, {', '.join(map(str, self.input_shape))}], "
                             f"got shape {tuple(xb.shape)}")
        out = jax.ShapeDtypeStruct((xb.shape[0], self.num_classes), jnp.float32)
        return jax.pure_callback(self._host, out, xb.astype(jnp.float32), vmap_method="broadcast_all")

    def _host(self, x) -> np.ndarray:
        """x f32[..., *input_shape] (leading axes: vmap's, then the batch) -> f32[..., K]."""
        x = np.asarray(x)
        lead = x.shape[: x.ndim - len(self.input_shape)]
        flat = x.reshape((-1,) + self.input_shape)
        n = flat.shape[0]
        step = self.batch_size or max(n, 1)
        parts = [self._answer(flat[i : i + step], self.fn(flat[i : i + step]), self.num_classes)
                 for i in range(0, n, step)]
        out = np.concatenate(parts) if parts else np.zeros((0, self.num_classes), np.float32)
        return out.reshape(lead + (self.num_classes,))

    def _answer(self, x: np.ndarray, out, k: Optional[int]) -> np.ndarray:
        """fn's answer `out` for x[n, ...], checked (module doc) -> f32[n, K]."""
        expected = f"[{x.shape[0]}, {'K' if k is None else k}]"
        try:
            a = np.asarray(out)
        except Exception as err:  # a tensor that needs .detach() / .cpu(), a ragged list
            raise ValueError(f"fn ({self.name}) must return an array {expected} for x{list(x.shape)}; "
                             f"got {type(out).__name__} ({err})") from None
        if a.ndim != 2 or a.shape[0] != x.shape[0] or (k is not None and a.shape[1] != k) or a.shape[1] < 1:
            raise ValueError(f"fn ({self.name}) returned shape {list(a.shape)} for x{list(x.shape)}; expected {expected}")
        if a.dtype.kind not in "fiu":
            raise ValueError(f"fn ({self.name}) must return real numbers, got dtype {a.dtype} for x{list(x.shape)}")
        with np.errstate(over="ignore"):  # beyond float32: inf, refused next
            a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError(f"fn ({self.name}) returned non-finite scores (NaN or inf, or beyond float32) "
                             f"for x{list(x.shape)}")
        if self.outputs == "probs" and ((a < 0).any() or (a > 1).any()):
            raise ValueError(f"fn ({self.name}) returned scores outside [0, 1] for x{list(x.shape)} with "
                             f"outputs='probs' (use outputs='logits' for unnormalised scores)")
        return a

    def __repr__(self) -> str:
        return f"BlackBox({self.name!r}, input_shape={self.input_shape}, K={self.num_classes})"


def _shape(input_shape) -> tuple[int, ...]:
    """input_shape as a tuple of positive ints (ValueError naming it)."""
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if not shape or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
        raise ValueError(f"input_shape must be the per-example shape, e.g. (H, W, C), got {input_shape!r}")
    return tuple(int(d) for d in shape)
