"""`OnnxModel`: an ONNX classifier compiled to a pure JAX function, with the zoo `Model`'s
interface (`apply_fn`, `variables`, `__call__`, `preprocess`, `at_size`, labels), and
`load_onnx(path)` that builds it.

    model = rexjax.models.load("path/model.onnx")
    logits = model(x)                              # x f32[B,*S,C] channels-last -> f32[B,K], jitted
    model.apply_fn(model.variables, x)             # pure, un-jitted (ConvAD traces it)

Only the graph's first input and first output are used (as the ReX tool does). The input
is a float tensor of a signal [B, C, N], an image [B, C, H, W] or a volume [B, C, D, H, W],
channels-first when axis 1 is 1, 3 or 4 (the tool's rule), else channels-last; or tabular
[B, F] (two axes), run as a signal of F elements and one channel (`compile.input_layout`).
The model always takes x[B, *S, C] channels-last: `input_shape` = (*S, C) per example,
`rank` = len(S), `input_size` = S ((H, W) for an image; 224 x 224 where an image's spatial
dims are symbolic; a signal's or volume's must be fixed). Images have preprocessing (a
path or PIL image -> f32[H, W, C]); other ranks take arrays only. The batch axis may be
symbolic or 1: a graph whose shape arithmetic bakes in batch 1 (a static export: `Reshape`
to `[1, -1]`) runs one example at a time under `jax.vmap`, which is what `batched` records.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, ClassVar, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rexjax.io import display_name
from rexjax.models.labels import imagenet_short_labels
from rexjax.models.onnx.compile import MAX_TRACE_ELEMENTS, Graph, compile_graph
from rexjax.models.onnx.reader import read_model_and_sha256
from rexjax.models.preprocess import ImageLike, Preprocess

DEFAULT_SIZE = (224, 224)  # input_size when an image graph's spatial dims are symbolic
_LAYOUTS = {2: ("NF", "NF"), 3: ("NWC", "NCW"), 4: ("NHWC", "NCHW"), 5: ("NDHWC", "NCDHW")}  # [rank][channels_first]


@dataclass(frozen=True, eq=False)
class OnnxModel:
    """A loaded ONNX classifier (see module doc).

    variables: {"params": {initializer name: array}} (floating-point initializers; Conv
    weights of a channels-first graph in *IO: HWIO, WIO, DHWIO). input_size: S, the
    position axes. input_shape: (*S, C), one example as `apply_fn` takes it. rank: len(S).
    input_layout: the graph's own, "NCW"/"NWC", "NCHW"/"NHWC", "NCDHW"/"NDHWC" or "NF"
    (tabular). preprocessing: images only (None for other ranks).
    opset: the default domain's opset. op_types: the graph's op types (sorted).
    batched: False when the graph takes one image at a time (run under `jax.vmap`).
    """

    name: str
    path: str
    sha256: str
    variables: dict
    input_size: tuple[int, ...]
    channels: int
    input_layout: str
    num_classes: int
    labels: tuple[str, ...]
    preprocessing: Optional[Preprocess]
    opset: int
    op_types: tuple[str, ...]
    graph: Graph = field(repr=False)
    batched: bool = True
    has_weights: bool = True
    feature_names: tuple[str, ...] = ()
    executor: ClassVar[str] = "xla"  # what runs the forward pass (`runtime.OnnxRuntimeModel`: "onnxruntime")
    _jit_apply: Callable = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "_jit_apply", jax.jit(self.apply_fn))

    def apply_fn(self, variables: Mapping, x: jax.Array) -> jax.Array:
        """Pure forward pass: x f32[B,*S,C] (model input space, channels-last) -> logits f32[B,K]."""
        params = variables["params"]
        if self.batched:
            return self.graph.apply(params, x).astype(jnp.float32)
        one = lambda xi: self.graph.apply(params, xi[None])[0]
        return jax.vmap(one)(x).astype(jnp.float32)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (*self.input_size, self.channels)

    @property
    def rank(self) -> int:
        return len(self.input_size)

    def _check_input(self, x) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim != self.rank + 2 or x.shape[-1] != self.channels:
            axes = ",".join({1: ["N"], 2: ["H", "W"], 3: ["D", "H", "W"]}[self.rank])
            raise ValueError(f"{self.name}: x must be f32[B,{axes},{self.channels}] in model input space, "
                             f"got shape {x.shape}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise ValueError(f"{self.name}: x must be floating point (model input space), got {x.dtype}")
        return x

    def __call__(self, x: jax.Array) -> jax.Array:
        """x f32[B,*S,C] -> logits f32[B,K] (jitted)."""
        return self._jit_apply(self.variables, self._check_input(x))

    def preprocess(self, image: ImageLike) -> np.ndarray:
        """Path / PIL image / uint8 array -> f32[H,W,C] in this model's input space (image
        models; other ranks take arrays already in the model's input space)."""
        if self.preprocessing is None:
            raise ValueError(f"{self.name}: a model of {self.input_layout} inputs takes arrays f32[*S, C] "
                             f"of shape {self.input_shape}, not images")
        return self.preprocessing(image)

    def at_size(self, height: int, width: Optional[int] = None) -> "OnnxModel":
        """The same model fed `height` x `width` images (square by default), when the graph
        takes that size (checked by shape inference, nothing computed): a graph whose shape
        constants are fixed (a static export's Reshape to 7*7*C features) refuses with its
        node's reason, one ValueError naming `input_size`."""
        if self.rank != 2:
            raise ValueError(f"{self.name}: input_size can be changed for image models only "
                             f"(this one takes {self.input_layout})")
        width = height if width is None else width
        size = (int(height), int(width))
        if min(size) < 1:
            raise ValueError(f"{self.name}: input_size must be positive, got {size[0]}x{size[1]}")
        if size == tuple(self.input_size):
            return self
        try:
            out = jax.eval_shape(self.apply_fn, self.variables,
                                 jax.ShapeDtypeStruct((1, *size, self.channels), jnp.float32))
        except ValueError as err:
            raise ValueError(f"{self.name}: input_size {size[0]}x{size[1]} is not accepted by the graph: "
                             f"{str(err).splitlines()[0]}") from err
        if tuple(out.shape) != (1, self.num_classes):
            raise ValueError(f"{self.name}: input_size {size[0]}x{size[1]} gives outputs of shape "
                             f"{tuple(out.shape)}, not (1, {self.num_classes})")
        return replace(self, input_size=size, preprocessing=replace(self.preprocessing, size=size))

    @property
    def param_count(self) -> int:
        return int(sum(np.size(a) for a in jax.tree_util.tree_leaves(self.variables["params"])))


def _output_shape(graph: Graph, params: dict, shape: tuple, batched: bool):
    """Shape inference of the first output for an input of `shape` (channels-last), or the error."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    apply = partial(graph.apply, limit=MAX_TRACE_ELEMENTS)
    if batched:
        return jax.eval_shape(apply, params, x)
    return jax.eval_shape(lambda p, x: jax.vmap(lambda xi: apply(p, xi[None])[0])(x), params, x)


def load_onnx(path: str | os.PathLike, *, channels_last: bool = True) -> OnnxModel:
    """Reads (`reader.read_model`: hostile files refused), checks and compiles the ONNX
    classifier at `path`. One-line ValueError (`UnsupportedOnnxOp` for an op outside the
    table) naming the file for anything it cannot run. `channels_last=False` runs an NCHW
    graph in its own layout (benchmarks only)."""
    path = os.fspath(path)
    source = display_name(path)
    model, sha256 = read_model_and_sha256(path)
    graph = compile_graph(model, source, channels_last=channels_last)
    dims = graph.input_dims
    if len(dims) == 2:
        spatial, c = dims[1:], 1
    else:
        spatial, c = (dims[2:], dims[1]) if graph.channels_first else (dims[1:-1], dims[-1])
    rank = len(spatial)
    if None in spatial and rank == 2:
        spatial = DEFAULT_SIZE
    elif None in spatial or c is None:
        raise ValueError(f"{source}: input {graph.input_name!r} has shape {list(dims)}; the "
                         f"{'features' if len(dims) == 2 else 'channels and positions'} must be fixed (only images "
                         f"default to {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]})")
    size = tuple(int(s) for s in spatial)
    params = {k: jnp.asarray(v) for k, v in graph.params.items()}
    sample = (2, *size, c)
    batched = True
    try:
        out = _output_shape(graph, params, sample, batched=True)
    except ValueError as err:
        first = ValueError(str(err).strip().splitlines()[0])  # without the notes JAX appends
        if dims[0] is None:  # a dynamic batch axis that still fails: the graph's own error
            raise first from None
        try:  # batch fixed to 1 and baked into shape constants: one image at a time
            out = _output_shape(graph, params, sample, batched=False)
            batched = False
        except ValueError:
            raise first from None
    if len(out.shape) != 2 or out.shape[0] != sample[0]:
        raise ValueError(f"{source}: the first output has shape {tuple(out.shape)} for a batch of {sample[0]}; "
                         "a classifier returns [batch, classes]")
    k = int(out.shape[1])
    labels = imagenet_short_labels() if k == 1000 else tuple(str(i) for i in range(k))
    return OnnxModel(
        name=os.path.splitext(os.path.basename(source))[0],
        path=path,
        sha256=sha256,
        variables={"params": params},
        input_size=size,
        channels=c,
        input_layout=_LAYOUTS[len(dims)][graph.channels_first],
        num_classes=k,
        labels=tuple(labels),
        preprocessing=Preprocess(size, mean=0.0, std=1.0, norm=255.0, channels=c) if rank == 2 else None,
        opset=graph.opset,
        op_types=graph.op_types,
        graph=graph,
        batched=batched,
    )
