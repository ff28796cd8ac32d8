"""The ONNX op table: `OPS` maps an op type to an `Op(fn, layout, check)`.

`fn(node, *inputs) -> output | list[output]` computes one ONNX node. An input is a numpy
array when it is concrete (initializers of integer/bool type, Constant nodes, and
everything computed only from those, e.g. the `Shape -> Gather -> Concat -> Reshape`
sub-graphs of dynamic batch and TF 'SAME' padding), else a traced `jax.Array`; every op
computes in numpy when all its inputs are numpy (`xp`), so shape arithmetic is folded at
trace time and never reaches the jaxpr. Missing optional inputs are None.

Layouts. The compiler runs NCHW graphs channels-last inside (see `compile.py`): a value may
be *stored* channels-last, i.e. as `canonical.transpose(0, 2, ..., r-1, 1)`
(`node.last` says how the node's first input is stored). `layout` tells the compiler what
an op accepts:

* "spatial": convolutions, pooling, BatchNormalization: the data input arrives stored
  channels-last (in the channels-first benchmark mode: canonical) and the output is stored
  the same way. A Conv weight may arrive pre-converted to HWIO (`node.tags[1] == "hwio"`).
* "elementwise": broadcasting ops; if any input is stored channels-last, every input is
  brought to that layout (constants like `[C, 1, 1]` are permuted in numpy) and so is the
  output.
* "concat": Concat, inputs aligned as for "elementwise", its axis mapped (`node.axis`).
* "axes": ops that read the data input in either layout and map their axes
  (`node.axis`): Pad, Reduce*, Transpose, Shape; the op sets `node.out_last` for its
  outputs.
* "canonical": everything else sees canonical (ONNX) layouts.

`check(node) -> str | None` looks at attributes at load time (before anything is traced)
and returns why a node cannot be compiled (an unsupported attribute value).

Precision: convolutions and matrix products run at `lax.Precision.HIGHEST`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import onnx
from jax import lax

from rexjax.models.layers import attention, depthwise_conv

HIGHEST = lax.Precision.HIGHEST
MAX_CONCRETE = 1 << 26  # elements of one value computed at trace time (shape sub-graphs)


def is_concrete(v) -> bool:
    return isinstance(v, (np.ndarray, np.generic))


def xp(*values):
    """numpy when every (non-None) value is concrete, else jax.numpy."""
    return np if all(is_concrete(v) for v in values if v is not None) else jnp


def ints(value, what: str) -> list[int]:
    """A concrete integer tensor (shape arguments: Reshape's shape, Slice's starts, ...)."""
    if not is_concrete(value):
        raise ValueError(f"{what} must be a constant (computed from shapes and constants), not a traced value")
    return [int(v) for v in np.asarray(value).reshape(-1)]


def bounded(shape, what: str) -> tuple[int, ...]:
    """`shape` as a tuple, refused when it is negative or larger than MAX_CONCRETE elements."""
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape) or math.prod(shape) > MAX_CONCRETE:
        raise ValueError(f"{what} {shape} is negative or larger than {MAX_CONCRETE} elements")
    return shape


def np_dtype(onnx_type: int) -> np.dtype:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(onnx_type))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"unsupported tensor type {onnx_type}") from None


def cast(x, dtype: np.dtype):
    """x.astype(dtype); a traced value gets JAX's canonical dtype (64-bit -> 32-bit)."""
    if is_concrete(x):
        return np.asarray(x).astype(dtype)
    return x.astype(jax.dtypes.canonicalize_dtype(dtype))


class Node:
    """One ONNX node at trace time: its attributes, opset and the layout of its inputs.

    tags: per input, None (canonical), "last" (stored channels-last) or "hwio" (a Conv
    weight converted at load). last: whether input 0 is stored channels-last.
    out_last: whether the outputs are stored channels-last (ops of layout "axes" set it).
    """

    def __init__(self, proto: onnx.NodeProto, opset: int, tags=(), channels_last: bool = True):
        self.proto = proto
        self.name = proto.name or (proto.output[0] if proto.output else "")
        self.op_type = proto.op_type
        self.opset = opset
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute}
        self.tags = tuple(tags)
        self.last = bool(self.tags) and self.tags[0] == "last"
        self.channels_last = channels_last
        self.out_last = self.last
        self.n_outputs = len(proto.output)

    def attr(self, key: str, default: Any = None) -> Any:
        value = self.attrs.get(key, default)
        return value.decode() if isinstance(value, bytes) else value

    def axis(self, a: int, rank: int) -> int:
        """Canonical axis `a` (negative allowed) -> the axis where input 0 stores it."""
        if not -rank <= a < rank:
            raise ValueError(f"axis {a} out of range for rank {rank}")
        a %= rank
        return stored_axis(a, rank) if self.last else a

    def used(self, i: int) -> bool:
        """Whether output i is consumed (has a name)."""
        return i < len(self.proto.output) and bool(self.proto.output[i])


# --- layouts ---------------------------------------------------------------------------------
def last_perm(rank: int) -> tuple[int, ...]:
    """Canonical -> channels-last storage: (0, 2, ..., rank-1, 1)."""
    return (0, *range(2, rank), 1)


def stored_axis(a: int, rank: int) -> int:
    """Where channels-last storage keeps canonical axis a."""
    return last_perm(rank).index(a)


def to_last(v, rank: int):
    """A canonical value broadcastable to rank `rank` -> stored channels-last of that rank."""
    if v is None or np.ndim(v) == 0:
        return v
    v = xp(v).reshape(v, (1,) * (rank - v.ndim) + tuple(v.shape))
    return xp(v).transpose(v, last_perm(rank))


def to_canonical(v, tag: Optional[str]):
    if tag == "last":
        return xp(v).transpose(v, np.argsort(last_perm(v.ndim)))
    if tag == "hwio":  # HWIO -> OIHW
        return xp(v).transpose(v, (v.ndim - 1, v.ndim - 2, *range(v.ndim - 2)))
    return v


def hwio(w_oihw: np.ndarray) -> np.ndarray:
    """A Conv weight O,I,*K -> *K,I,O (OIHW -> HWIO, OIW -> WIO, OIDHW -> DHWIO; converted once at load)."""
    return np.ascontiguousarray(np.transpose(w_oihw, (*range(2, w_oihw.ndim), 1, 0)))


# --- elementwise -----------------------------------------------------------------------------
def _binary(np_fn, jnp_fn):
    def fn(node, a, b):
        return np_fn(a, b) if xp(a, b) is np else jnp_fn(a, b)

    return fn


def _unary(np_fn, jnp_fn):
    def fn(node, x):
        return np_fn(x) if is_concrete(x) else jnp_fn(x)

    return fn


def _div(node, a, b):
    if np.issubdtype(np.result_type(a, b), np.integer):  # ONNX integer division truncates
        m = xp(a, b)
        q = m.abs(a) // m.abs(b)
        return m.where((a < 0) != (b < 0), -q, q).astype(np.result_type(a, b))
    return a / b


def _pow(node, x, y):
    m = xp(x, y)
    if is_concrete(y) and np.size(y) == 1 and float(np.asarray(y).reshape(())) in (1.0, 2.0, 3.0, 0.5):
        e = float(np.asarray(y).reshape(()))
        out = m.sqrt(x) if e == 0.5 else x ** int(e)
    else:
        out = m.power(x, y)
    return cast(out, np.result_type(x)) if is_concrete(out) else out.astype(x.dtype)


def _variadic(np_fn, jnp_fn):
    def fn(node, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = np_fn(out, x) if xp(out, x) is np else jnp_fn(out, x)
        return out

    return fn


def _mean(node, *xs):
    return _variadic(np.add, jnp.add)(node, *xs) / len(xs)


def _clip(node, x, lo=None, hi=None):
    if node.opset < 11:
        lo, hi = node.attr("min", -np.inf), node.attr("max", np.inf)
    m = xp(x, lo, hi)
    if lo is not None:
        x = m.maximum(x, m.asarray(lo, dtype=x.dtype))
    if hi is not None:
        x = m.minimum(x, m.asarray(hi, dtype=x.dtype))
    return x


def _sigmoid(node, x):
    return 1.0 / (1.0 + np.exp(-x)) if is_concrete(x) else jax.nn.sigmoid(x)


def _hard_sigmoid(node, x, alpha=None, beta=None):
    alpha = node.attr("alpha", 0.2) if alpha is None else alpha
    beta = node.attr("beta", 0.5) if beta is None else beta
    m = xp(x)
    return m.clip(x * np.asarray(alpha, x.dtype) + np.asarray(beta, x.dtype), 0.0, 1.0).astype(x.dtype)


def _hard_swish(node, x):
    return x * _hard_sigmoid(node, x, 1.0 / 6.0, 0.5)


def _gelu(node, x):
    return jax.nn.gelu(x, approximate=node.attr("approximate", "none") == "tanh")


def _erf(node, x):
    return lax.erf(x) if not is_concrete(x) else np.vectorize(math.erf, otypes=[x.dtype])(x)


def _leaky_relu(node, x):
    return xp(x).where(x >= 0, x, x * np.asarray(node.attr("alpha", 0.01), x.dtype))


def _prelu(node, x, slope):
    return xp(x, slope).where(x >= 0, x, x * slope)


def _softplus(node, x):
    return xp(x).logaddexp(x, 0.0).astype(x.dtype)


def _mish(node, x):
    return x * xp(x).tanh(_softplus(node, x))


def _relu(node, x):
    return xp(x).maximum(x, np.zeros((), x.dtype))


def _where(node, c, a, b):
    return xp(c, a, b).where(c, a, b)


def _cast(node, x):
    return cast(x, np_dtype(node.attr("to")))


def _cast_like(node, x, like):
    return cast(x, np.dtype(like.dtype))


def _identity(node, x):
    return x


def _dropout(node, x, ratio=None, training=None):
    if training is not None and (not is_concrete(training) or bool(np.asarray(training))):
        raise ValueError("Dropout in training mode")
    outs = [x]
    if node.used(1):
        outs.append(np.ones(x.shape, bool))
    return outs


# --- spatial (convolutions, pooling, batch norm) -------------------------------------------
def _spatial_dims(node, x) -> list[int]:
    """Static sizes of x's spatial axes, in canonical order."""
    return list(x.shape[1:-1]) if node.last or (node.channels_last and x.ndim >= 3) else list(x.shape[2:])


def _channel_axis(node, rank: int) -> int:
    return rank - 1 if node.channels_last and rank >= 3 else 1


def _pads(node, sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    """Explicit (begin, end) padding per spatial axis from `pads` or `auto_pad`."""
    auto = node.attr("auto_pad", "NOTSET")
    n = len(sizes)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for size, k, s, d in zip(sizes, kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            out.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * n
    pads = list(node.attr("pads", [0] * (2 * n)))
    return list(zip(pads[:n], pads[n:]))


def _check_auto_pad(node) -> Optional[str]:
    auto = node.attr("auto_pad", "NOTSET")
    if auto not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        return f"auto_pad={auto!r}"
    return None


def _conv(node, x, w, b=None):
    rank = x.ndim
    nsp = rank - 2
    if node.channels_last and node.tags[1] != "hwio":
        w = xp(w).transpose(w, (*range(2, rank), 1, 0))
    if not node.channels_last:
        w = to_canonical(w, node.tags[1])
    ksize = list(w.shape[:nsp]) if node.channels_last else list(w.shape[2:])
    if node.attr("kernel_shape") is not None and list(node.attr("kernel_shape")) != ksize:
        raise ValueError(f"kernel_shape {node.attr('kernel_shape')} does not match the weight's {ksize}")
    strides = list(node.attr("strides", [1] * nsp))
    dilations = list(node.attr("dilations", [1] * nsp))
    group = int(node.attr("group", 1))
    pads = _pads(node, _spatial_dims(node, x), ksize, strides, dilations)
    cin = x.shape[_channel_axis(node, rank)]
    cout = w.shape[-1] if node.channels_last else w.shape[0]
    if node.channels_last:
        depthwise = rank == 4 and group == cin == cout and w.shape[2] == 1
        if depthwise and strides[0] == strides[1] and dilations == [1, 1]:
            y = depthwise_conv(x, w, int(strides[0]), tuple(tuple(p) for p in pads))
        else:
            dn = lax.ConvDimensionNumbers((0, rank - 1, *range(1, rank - 1)), (rank - 1, rank - 2, *range(nsp)),
                                          (0, rank - 1, *range(1, rank - 1)))
            y = lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=dilations, dimension_numbers=dn,
                                         feature_group_count=group, precision=HIGHEST)
    else:
        dn = lax.ConvDimensionNumbers(tuple(range(rank)), tuple(range(rank)), tuple(range(rank)))
        y = lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=dilations, dimension_numbers=dn,
                                     feature_group_count=group, precision=HIGHEST)
    if b is not None:
        shape = [1] * rank
        shape[_channel_axis(node, rank)] = -1
        y = y + xp(b).reshape(b, shape)
    return y


def _batch_norm(node, x, scale, bias, mean, var):
    shape = [1] * x.ndim
    shape[_channel_axis(node, x.ndim)] = -1
    m = xp(x, scale, bias, mean, var)
    eps = np.asarray(node.attr("epsilon", 1e-5), x.dtype)
    a = m.reshape(scale / m.sqrt(var + eps), shape)
    return (x - m.reshape(mean, shape)) * a + m.reshape(bias, shape)


def _check_batch_norm(node) -> Optional[str]:
    if node.attr("training_mode", 0) or len([o for o in node.proto.output if o]) > 1:
        return "training mode (running statistics as outputs)"
    return None


def _pool_geometry(node, x):
    """(window, strides, padding, window dilation, divisor) of a Max/AveragePool, over all
    axes of x's stored layout; the divisor (AveragePool) is a static numpy array shaped
    [out_1, ..., out_n] over the spatial axes."""
    kernel = list(node.attr("kernel_shape"))
    n = len(kernel)
    strides = list(node.attr("strides", [1] * n))
    dilations = list(node.attr("dilations", [1] * n))
    sizes = _spatial_dims(node, x)
    if len(sizes) != n:
        raise ValueError(f"kernel_shape {kernel} does not match an input of rank {x.ndim}")
    pads = _pads(node, sizes, kernel, strides, dilations)
    ceil_mode = bool(node.attr("ceil_mode", 0))
    include_pad = bool(node.attr("count_include_pad", 0))
    padding, divisors = [], []
    for size, k, s, d, (pb, pe) in zip(sizes, kernel, strides, dilations, pads):
        eff = (k - 1) * d + 1
        span = size + pb + pe - eff
        if span < 0:
            raise ValueError(f"pooling window {eff} is larger than the padded input {size + pb + pe}")
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + pb:  # the last window would start in the end padding
            out -= 1
        extra = max(0, (out - 1) * s + eff - (size + pb + pe))
        padding.append((pb, pe + extra))
        pos = (np.arange(out) * s - pb)[:, None] + np.arange(k)[None, :] * d  # [out, k] input positions
        lo, hi = (-pb, size + pe) if include_pad else (0, size)
        divisors.append(((pos >= lo) & (pos < hi)).sum(1).astype(np.float32))
    divisor = divisors[0]
    for d in divisors[1:]:
        divisor = divisor[..., None] * d
    if node.channels_last:
        return ((1, *kernel, 1), (1, *strides, 1), [(0, 0), *padding, (0, 0)], (1, *dilations, 1),
                divisor[None, ..., None])
    return ((1, 1, *kernel), (1, 1, *strides), [(0, 0), (0, 0), *padding], (1, 1, *dilations), divisor[None, None])


def _max_pool(node, x):
    window, strides, padding, dil, _ = _pool_geometry(node, x)
    return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, padding, window_dilation=dil)


def _average_pool(node, x):
    window, strides, padding, dil, divisor = _pool_geometry(node, x)
    total = lax.reduce_window(x, 0.0, lax.add, window, strides, padding, window_dilation=dil)
    return total / divisor.astype(x.dtype)


def _check_pool(node) -> Optional[str]:
    if node.op_type == "MaxPool" and node.used(1):
        return "the Indices output"
    if node.attr("kernel_shape") is None:
        return "no kernel_shape"
    return _check_auto_pad(node)


def _global_pool(reduce_name: str):
    def fn(node, x):
        axes = tuple(range(1, x.ndim - 1)) if node.channels_last else tuple(range(2, x.ndim))
        return getattr(xp(x), reduce_name)(x, axis=axes, keepdims=True)

    return fn


# --- axes-aware ops --------------------------------------------------------------------------
def _reduce_axes(node, x, axes_input):
    """Canonical reduction axes, from the attribute (older opsets) or the input."""
    from_input = node.opset >= 18 or (node.op_type == "ReduceSum" and node.opset >= 13)
    axes = ints(axes_input, "axes") if from_input and axes_input is not None else node.attr("axes")
    if not axes:
        if node.attr("noop_with_empty_axes", 0):
            return None
        return list(range(x.ndim))
    return [a % x.ndim for a in axes]


def _reduce(kind: str):
    def fn(node, x, axes_input=None):
        axes = _reduce_axes(node, x, axes_input)
        if axes is None:
            return x
        keep = bool(node.attr("keepdims", 1))
        stored = tuple(sorted(node.axis(a, x.ndim) for a in axes))
        m = xp(x)
        if kind == "l2":
            y = m.sqrt(m.sum(x * x, axis=stored, keepdims=keep))
        elif kind == "sum_square":
            y = m.sum(x * x, axis=stored, keepdims=keep)
        else:
            y = getattr(m, kind)(x, axis=stored, keepdims=keep)
        if node.last and not keep:
            order = [a for a in last_perm(x.ndim) if a not in axes]  # canonical axes in stored order
            if order != sorted(order):
                y = m.transpose(y, np.argsort(order))
            node.out_last = False
        return y

    return fn


def _concat(node, *xs):
    xs = [x for x in xs if x is not None]
    m = xp(*xs)
    return m.concatenate(xs, axis=node.axis(int(node.attr("axis")), xs[0].ndim))


def _transpose(node, x):
    rank = x.ndim
    perm = list(node.attr("perm", list(reversed(range(rank)))))
    if node.last:  # the data is stored channels-last: compose with the storage order
        inv = list(np.argsort(last_perm(rank)))
        perm = [inv[p] for p in perm]
    node.out_last = False
    if rank >= 3 and node.channels_last:
        as_last = [perm[p] for p in last_perm(rank)]  # storing the result channels-last
        if as_last == list(range(rank)):
            node.out_last = True
            return x
    return x if perm == list(range(rank)) else xp(x).transpose(x, perm)


def _shape(node, x):
    shape = list(x.shape)
    if node.last:
        shape = [shape[stored_axis(a, x.ndim)] for a in range(x.ndim)]
    elif node.tags[0] == "hwio":  # a Conv weight converted at load: report its OIHW shape
        shape = [shape[-1], shape[-2], *shape[:-2]]
    start, end = node.attr("start", 0), node.attr("end")
    node.out_last = False
    return np.asarray(shape[start:end], np.int64)


def _pad(node, x, pads=None, value=None, axes=None):
    if node.opset < 11:
        pads, value = node.attr("pads"), np.asarray(node.attr("value", 0.0), x.dtype)
    else:
        pads = ints(pads, "pads")
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [a % rank for a in ints(axes, "axes")]
    if len(pads) != 2 * len(axes):
        raise ValueError(f"pads has {len(pads)} values for {len(axes)} axes")
    widths = [(0, 0)] * rank
    for i, a in enumerate(axes):
        widths[node.axis(a, rank)] = (pads[i], pads[i + len(axes)])
    mode = node.attr("mode", "constant")
    m = xp(x, value)
    if any(b < 0 or e < 0 for b, e in widths):  # negative pads crop
        x = x[tuple(slice(-b if b < 0 else 0, x.shape[i] + e if e < 0 else None) for i, (b, e) in enumerate(widths))]
        widths = [(max(b, 0), max(e, 0)) for b, e in widths]
    if mode == "constant":
        fill = 0 if value is None else (value.reshape(()) if not is_concrete(value) else np.asarray(value).reshape(()))
        return m.pad(x, widths, mode="constant", constant_values=fill)
    return m.pad(x, widths, mode={"reflect": "reflect", "edge": "edge"}[mode])


def _check_pad(node) -> Optional[str]:
    mode = node.attr("mode", "constant")
    return None if mode in ("constant", "reflect", "edge") else f"mode={mode!r}"


# --- canonical ops ---------------------------------------------------------------------------
def _softmax(log: bool):
    def fn(node, x):
        default = -1 if node.opset >= 13 else 1
        axis = int(node.attr("axis", default)) % x.ndim
        m = xp(x)
        if node.opset < 13:  # coerced to 2-D: [prod(shape[:axis]), prod(shape[axis:])]
            flat = m.reshape(x, (math.prod(x.shape[:axis]), -1))
            return m.reshape(fn_axis(flat, 1), x.shape)
        return fn_axis(x, axis)

    def fn_axis(x, axis):
        if not is_concrete(x):
            return (jax.nn.log_softmax if log else jax.nn.softmax)(x, axis=axis)
        z = x - x.max(axis=axis, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=axis, keepdims=True))
        return (z - lse) if log else np.exp(z - lse)

    return fn


def _matmul(node, a, b):
    return np.matmul(a, b) if xp(a, b) is np else jnp.matmul(a, b, precision=HIGHEST)


def _fused_attention(node, a, b, v):
    """`MatMul(Softmax(MatMul(a, b), axis=-1), v)`, fused at load (`compile.fuse_attention`):
    a f32[B,h,N,d] (queries, already scaled), b f32[B,h,d,N] (keys, transposed), v
    f32[B,h,N,d] -> f32[B,h,N,d]. Self-attention of these shapes is emitted as the zoo's
    named `layers.attention` (q, k, v as [B,N,h,d]; it scales q by d^-0.5, undone here), so
    ConvAD drops inactive tokens as keys and values (`rexjax.ad.rules_attention`); any other
    shape is computed as written."""
    shaped = a.ndim == 4 and v.shape == a.shape and b.shape == (*a.shape[:2], a.shape[3], a.shape[2])
    if xp(a, b, v) is np or not shaped:
        scores = _matmul(node, a, b)
        return _matmul(node, _softmax(False)(node, scores), v)
    root_d = np.asarray(math.sqrt(a.shape[-1]), a.dtype)
    q = jnp.swapaxes(a, 1, 2) * root_d
    out = attention(q, jnp.transpose(b, (0, 3, 1, 2)), jnp.swapaxes(v, 1, 2))
    return jnp.swapaxes(out, 1, 2)


def _gemm(node, a, b, c=None):
    m = xp(a, b, c)
    if node.attr("transA", 0):
        a = m.transpose(a)
    contract_b = 1 if node.attr("transB", 0) else 0
    if m is np:
        y = a @ (b.T if contract_b else b)
    else:
        y = lax.dot_general(a, b, (((1,), (contract_b,)), ((), ())), precision=HIGHEST)
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    if alpha != 1.0:
        y = y * np.asarray(alpha, y.dtype)
    if c is not None and beta != 0.0:
        y = y + (c if beta == 1.0 else c * np.asarray(beta, y.dtype))
    return y


def _einsum(node, *xs):
    eq = node.attr("equation")
    return np.einsum(eq, *xs) if xp(*xs) is np else jnp.einsum(eq, *xs, precision=HIGHEST)


def _layer_norm(node, x, scale, bias=None):
    axis = int(node.attr("axis", -1)) % x.ndim
    axes = tuple(range(axis, x.ndim))
    m = xp(x, scale, bias)
    mean = m.mean(x, axis=axes, keepdims=True)
    d = x - mean
    var = m.mean(d * d, axis=axes, keepdims=True)
    y = d / m.sqrt(var + np.asarray(node.attr("epsilon", 1e-5), x.dtype)) * scale
    return y if bias is None else y + bias


def _check_layer_norm(node) -> Optional[str]:
    return "the Mean/InvStdDev outputs" if node.used(1) or node.used(2) else None


def _flatten(node, x):
    axis = int(node.attr("axis", 1)) % (x.ndim + 1) if x.ndim else 0
    return xp(x).reshape(x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


def _reshape(node, x, shape):
    target = ints(shape, "Reshape's shape")
    allowzero = bool(node.attr("allowzero", 0))
    out = [x.shape[i] if (s == 0 and not allowzero) else s for i, s in enumerate(target)]
    if out.count(-1) > 1:
        raise ValueError(f"Reshape's shape {target} has more than one -1")
    return xp(x).reshape(x, out)


def _squeeze(node, x, axes=None):
    axes = node.attr("axes") if node.opset < 13 else (None if axes is None else ints(axes, "axes"))
    if axes is None:
        axes = [i for i, s in enumerate(x.shape) if s == 1]
    return xp(x).squeeze(x, axis=tuple(a % x.ndim for a in axes))


def _unsqueeze(node, x, axes=None):
    axes = node.attr("axes") if node.opset < 13 else ints(axes, "axes")
    rank = x.ndim + len(axes)
    axes = sorted(a % rank for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return xp(x).reshape(x, shape)


def _gather(node, data, indices):
    axis = int(node.attr("axis", 0)) % data.ndim
    m = xp(data, indices)
    if is_concrete(indices):
        idx = np.asarray(indices).astype(np.int64)
        idx = np.where(idx < 0, idx + data.shape[axis], idx)
        if idx.ndim == 0 and m is jnp:  # x[:, i]: a slice, not a gather
            return lax.index_in_dim(data, int(idx), axis, keepdims=False)
        return m.take(data, idx, axis=axis)
    idx = jnp.where(indices < 0, indices + data.shape[axis], indices)
    return jnp.take(data, idx, axis=axis)


def _slice(node, x, starts=None, ends=None, axes=None, steps=None):
    if node.opset < 10:
        starts, ends, axes = node.attr("starts"), node.attr("ends"), node.attr("axes")
    else:
        starts, ends = ints(starts, "starts"), ints(ends, "ends")
        axes = None if axes is None else ints(axes, "axes")
        steps = None if steps is None else ints(steps, "steps")
    axes = list(range(len(starts))) if axes is None else [a % x.ndim for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for a, s, e, st in zip(axes, starts, ends, steps):
        dim = x.shape[a]
        if st == 0:
            raise ValueError("Slice step 0")
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        index[a] = slice(s, None if e < 0 else e, st)
    return x[tuple(index)]


def _split(node, x, split=None):
    axis = int(node.attr("axis", 0)) % x.ndim
    n = node.n_outputs
    if node.opset < 13:
        split = node.attr("split")
    elif split is not None:
        split = ints(split, "split")
    dim = x.shape[axis]
    if split is None:
        if node.opset >= 18 and node.attr("num_outputs") is not None:
            n = int(node.attr("num_outputs"))
        size = -(-dim // n)
        split = [size] * (n - 1) + [dim - size * (n - 1)]
    if sum(split) != dim or any(s < 0 for s in split):
        raise ValueError(f"split {list(split)} does not cover the axis of size {dim}")
    cuts = np.cumsum(split)[:-1].tolist()
    return xp(x).split(x, cuts, axis=axis)


def _constant(node):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            v = node.attrs[key]
            if key == "value":
                return onnx.numpy_helper.to_array(v)
            return np.asarray(v, np.float32 if "float" in key else np.int64)
    raise ValueError("Constant without a value")


def _check_constant(node) -> Optional[str]:
    keys = set(node.attrs) - {"value", "value_float", "value_floats", "value_int", "value_ints"}
    if keys:
        return f"attribute {sorted(keys)[0]!r}"
    if "value" in node.attrs and node.attrs["value"].data_type == onnx.TensorProto.STRING:
        return "a string value"
    return None


def _constant_of_shape(node, shape):
    shape = bounded(ints(shape, "ConstantOfShape's shape"), "ConstantOfShape's shape")
    value = node.attrs.get("value")
    fill = np.zeros((1,), np.float32) if value is None else onnx.numpy_helper.to_array(value).reshape(-1)
    return np.full(shape, fill[0], fill.dtype)


def _expand(node, x, shape):
    target = np.broadcast_shapes(tuple(x.shape), tuple(ints(shape, "Expand's shape")))
    if is_concrete(x):
        bounded(target, "Expand's output")
    return xp(x).broadcast_to(x, target)


def _tile(node, x, repeats):
    reps = ints(repeats, "Tile's repeats")
    if is_concrete(x):
        bounded([s * r for s, r in zip(x.shape, reps)], "Tile's output")
    return xp(x).tile(x, reps)


def _range(node, start, limit, delta):
    for name, v in (("start", start), ("limit", limit), ("delta", delta)):
        if not is_concrete(v):
            raise ValueError(f"Range's {name} must be a constant")
    start, limit, delta = (np.asarray(v).reshape(()) for v in (start, limit, delta))
    if delta == 0:
        raise ValueError("Range's delta is 0")
    bounded([max(math.ceil((limit - start) / delta), 0)], "Range's output")
    return np.arange(start, limit, delta, dtype=np.result_type(start))


def _size(node, x):
    return np.asarray(math.prod(x.shape), np.int64)


def _not(node, x):
    return xp(x).logical_not(x)


@dataclass(frozen=True)
class Op:
    fn: Callable
    layout: str = "canonical"
    check: Optional[Callable[[Node], Optional[str]]] = None


E, S, A = "elementwise", "spatial", "axes"

OPS: dict[str, Op] = {
    # elementwise arithmetic and activations
    "Add": Op(_binary(np.add, jnp.add), E),
    "Sub": Op(_binary(np.subtract, jnp.subtract), E),
    "Mul": Op(_binary(np.multiply, jnp.multiply), E),
    "Div": Op(_div, E),
    "Pow": Op(_pow, E),
    "Max": Op(_variadic(np.maximum, jnp.maximum), E),
    "Min": Op(_variadic(np.minimum, jnp.minimum), E),
    "Sum": Op(_variadic(np.add, jnp.add), E),
    "Mean": Op(_mean, E),
    "Sqrt": Op(_unary(np.sqrt, jnp.sqrt), E),
    "Exp": Op(_unary(np.exp, jnp.exp), E),
    "Log": Op(_unary(np.log, jnp.log), E),
    "Tanh": Op(_unary(np.tanh, jnp.tanh), E),
    "Neg": Op(_unary(np.negative, jnp.negative), E),
    "Abs": Op(_unary(np.abs, jnp.abs), E),
    "Reciprocal": Op(_unary(np.reciprocal, jnp.reciprocal), E),
    "Floor": Op(_unary(np.floor, jnp.floor), E),
    "Ceil": Op(_unary(np.ceil, jnp.ceil), E),
    "Erf": Op(_erf, E),
    "Relu": Op(_relu, E),
    "LeakyRelu": Op(_leaky_relu, E),
    "PRelu": Op(_prelu, E),
    "Sigmoid": Op(_sigmoid, E),
    "HardSigmoid": Op(_hard_sigmoid, E),
    "HardSwish": Op(_hard_swish, E),
    "Softplus": Op(_softplus, E),
    "Mish": Op(_mish, E),
    "Gelu": Op(_gelu, E, lambda n: None if n.attr("approximate", "none") in ("none", "tanh") else "approximate"),
    "Clip": Op(_clip, E),
    "Equal": Op(_binary(np.equal, jnp.equal), E),
    "Less": Op(_binary(np.less, jnp.less), E),
    "LessOrEqual": Op(_binary(np.less_equal, jnp.less_equal), E),
    "Greater": Op(_binary(np.greater, jnp.greater), E),
    "GreaterOrEqual": Op(_binary(np.greater_equal, jnp.greater_equal), E),
    "And": Op(_binary(np.logical_and, jnp.logical_and), E),
    "Or": Op(_binary(np.logical_or, jnp.logical_or), E),
    "Not": Op(_not, E),
    "Where": Op(_where, E),
    "Cast": Op(_cast, E),
    "CastLike": Op(_cast_like, E),
    "Identity": Op(_identity, E),
    "Dropout": Op(_dropout, E),
    # spatial
    "Conv": Op(_conv, S, _check_auto_pad),
    "BatchNormalization": Op(_batch_norm, S, _check_batch_norm),
    "MaxPool": Op(_max_pool, S, _check_pool),
    "AveragePool": Op(_average_pool, S, _check_pool),
    "GlobalAveragePool": Op(_global_pool("mean"), S),
    "GlobalMaxPool": Op(_global_pool("max"), S),
    # axes-aware
    "ReduceMean": Op(_reduce("mean"), A),
    "ReduceSum": Op(_reduce("sum"), A),
    "ReduceMax": Op(_reduce("max"), A),
    "ReduceMin": Op(_reduce("min"), A),
    "ReduceL2": Op(_reduce("l2"), A),
    "ReduceSumSquare": Op(_reduce("sum_square"), A),
    "Concat": Op(_concat, "concat"),
    "Transpose": Op(_transpose, A),
    "Shape": Op(_shape, A),
    "Pad": Op(_pad, A, _check_pad),
    # canonical
    "Softmax": Op(_softmax(False)),
    "LogSoftmax": Op(_softmax(True)),
    "MatMul": Op(_matmul),
    "Gemm": Op(_gemm),
    "Einsum": Op(_einsum),
    "LayerNormalization": Op(_layer_norm, check=_check_layer_norm),
    "Flatten": Op(_flatten),
    "Reshape": Op(_reshape),
    "Squeeze": Op(_squeeze),
    "Unsqueeze": Op(_unsqueeze),
    "Gather": Op(_gather),
    "Slice": Op(_slice),
    "Split": Op(_split),
    "Constant": Op(_constant, check=_check_constant),
    "ConstantOfShape": Op(_constant_of_shape),
    "Expand": Op(_expand),
    "Tile": Op(_tile),
    "Range": Op(_range),
    "Size": Op(_size),
}

FUSED_DOMAIN = "rexjax"  # nodes the compiler makes (never read from a file: other domains are refused)
FUSED: dict[str, Op] = {"FusedAttention": Op(_fused_attention)}
