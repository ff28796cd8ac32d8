"""An ONNX graph -> a pure JAX function: `compile_graph(model, source) -> Graph`, then
`graph.apply(params, x f32[B,*S,C]) -> f32[B,K]` (S: one to three position axes).

At load (`compile_graph`, nothing traced): the opset and every node are checked against
the op table (`ops.OPS`: op type and attribute values; one `UnsupportedOnnxOp` line naming
the op and the node), nodes are sorted topologically (`reader.sort_graph`, the reader's own
check and order), and the initializers are split:
floating-point ones become parameters (`params`, traced: ConvAD and gradients see them
as inputs), integer and bool ones stay numpy constants (shape arguments must be concrete).

At trace time (`Graph.apply`) the nodes are evaluated in order on an environment of
values; ops whose inputs are all concrete compute in numpy (`ops.xp`), so the shape
sub-graphs of dynamic batch axes and TF 'SAME' padding are folded on static shapes.

Ranks (`input_layout`): a signal [B, C, N], an image [B, C, H, W] or a volume
[B, C, D, H, W], each channels-first when axis 1 is 1, 3 or 4 (the ReX tool's rule), else
channels-last [B, *S, C]; and tabular [B, F] (decided by its two axes), fed as x[B, F, 1].

Layout: the input arrives channels-last (NHWC; the project's convention). A
channels-first graph runs channels-last inside (`channels_last=True`, the default): the
input is used as it is, stored channels-last, Conv weights are converted OI* -> *IO (OIHW
-> HWIO, OIW -> WIO, OIDHW -> DHWIO) once at load (those used
only by Conv, and by Shape, which reports their ONNX shape), spatial ops (conv, pooling,
BN) work on channels-last data, elementwise and axes-aware ops follow the layout of their
inputs (`ops` module doc), and any other op sees the canonical layout (a transpose is
inserted only there). `channels_last=False` transposes the input to channels-first at entry and runs
every op in the graph's own layout (the benchmark's comparison point,
`benchmarks/onnx_forward.py`).

Attention (`MatMul -> Softmax -> MatMul`) is fused at load into one node that emits the
zoo's named attention function, for ConvAD (`fuse_attention`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import onnx

from rexjax.models.onnx import ops
from rexjax.models.onnx.ops import OPS, Node
from rexjax.models.onnx.reader import sort_graph

MIN_OPSET, MAX_OPSET = 9, 22
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
MAX_TRACE_ELEMENTS = 1 << 28  # elements of one value at load's shape check, batch 2 (more is refused)


class UnsupportedOnnxOp(ValueError):
    """An ONNX op (or attribute value) outside the op table; the message is one line."""


def supported_ops() -> tuple[str, ...]:
    return tuple(sorted(OPS))


@dataclass(frozen=True, eq=False)
class Graph:
    """A checked, sorted ONNX graph ready to trace.

    nodes: topologically sorted NodeProtos (attention fused). params: {name: float numpy array} (Conv weights
    in `hwio` already HWIO). consts: {name: integer/bool numpy array}. input_name /
    output_name: the first graph input / output. input_dims: the input's declared dims
    (int, or None when symbolic). channels_first: whether the graph's input is
    channels-first ([B, C, *S]; `input_layout`).
    input_dtype: its numpy dtype. opset: the default domain's version. op_types: the
    file's op types, sorted (before `fuse_attention`).
    """

    source: str
    nodes: tuple
    params: dict
    consts: dict
    hwio: frozenset
    input_name: str
    output_name: str
    input_dims: tuple
    channels_first: bool
    input_dtype: np.dtype
    opset: int
    op_types: tuple
    channels_last: bool = True

    def apply(self, params: dict, x: jax.Array, limit: Optional[int] = None) -> jax.Array:
        """Pure forward pass: params {name: array}, x f32[B,*S,C] channels-last (a [B, F]
        graph takes x f32[B,F,1]) -> the graph's first output (f32[B,K] for a classifier).
        `limit`: refuse any value with more elements (load's shape check: a crafted
        Expand/Tile must not allocate at run time)."""
        x = x.astype(jax.dtypes.canonicalize_dtype(self.input_dtype))
        if len(self.input_dims) == 2:  # tabular: the features as one channel
            x = x.reshape(x.shape[:-1]) if x.shape[-1:] == (1,) else x
        env: dict = dict(self.consts)
        tags: dict = {}
        for name, value in params.items():
            env[name] = value
            if name in self.hwio:
                tags[name] = "hwio"
        if self.channels_first and self.channels_last:
            env[self.input_name], tags[self.input_name] = x, "last"
        elif self.channels_first:
            env[self.input_name] = jnp.transpose(x, (0, x.ndim - 1, *range(1, x.ndim - 1)))
        else:
            env[self.input_name] = x
        for proto in self.nodes:
            try:
                self._run(proto, env, tags, limit)
            except UnsupportedOnnxOp:
                raise
            except Exception as err:  # one line naming the node (shape errors, bad constants)
                msg = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise ValueError(f"{self.source}: node {proto.name!r} ({proto.op_type}): {msg}") from err
        return ops.to_canonical(env[self.output_name], tags.get(self.output_name))

    def _run(self, proto, env, tags, limit) -> None:
        op = ops.FUSED[proto.op_type] if proto.domain == ops.FUSED_DOMAIN else OPS[proto.op_type]
        vals = [env[i] if i else None for i in proto.input]
        in_tags = [tags.get(i) if i else None for i in proto.input]
        vals, in_tags = self._align(op.layout, vals, in_tags)
        node = Node(proto, self.opset, in_tags, self.channels_last)
        outs = op.fn(node, *vals)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        if op.layout == "spatial":
            out_last = self.channels_last and outs[0].ndim >= 3
        elif op.layout == "canonical":
            out_last = False
        else:
            out_last = node.out_last and outs[0].ndim >= 3
        for name, value in zip(proto.output, outs):
            if not name:
                continue
            size = int(np.prod(np.shape(value), dtype=np.int64))
            if ops.is_concrete(value) and size > ops.MAX_CONCRETE:
                raise ValueError(f"a constant output of {size} elements (limit {ops.MAX_CONCRETE})")
            if limit is not None and size > limit:
                raise ValueError(f"an output of {size} elements (limit {limit})")
            env[name] = value
            tags[name] = "last" if out_last else None

    def _align(self, layout: str, vals: list, tags: list) -> tuple[list, list]:
        """Brings the inputs to the layout the op takes (see `ops` module doc)."""
        canon = lambda i: ops.to_canonical(vals[i], tags[i]) if vals[i] is not None else None
        if layout == "canonical":
            return [canon(i) for i in range(len(vals))], [None] * len(vals)
        if layout == "spatial":
            out, out_tags = [], []
            for i, (v, t) in enumerate(zip(vals, tags)):
                if i == 0 and self.channels_last and v.ndim >= 3 and t != "last":
                    out.append(ops.to_last(v, v.ndim))
                    out_tags.append("last")
                elif i == 0 or t == "hwio":
                    out.append(v)
                    out_tags.append(t)
                else:
                    out.append(canon(i))
                    out_tags.append(None)
            return out, out_tags
        if layout in ("elementwise", "concat"):
            ranks = {v.ndim for v, t in zip(vals, tags) if t == "last"}
            top = max((np.ndim(v) for v in vals if v is not None), default=0)
            if len(ranks) == 1 and ranks == {top}:
                return ([v if t == "last" else ops.to_last(v, top) if v is not None else None
                         for v, t in zip(vals, tags)], ["last" if v is not None else None for v in vals])
            return [canon(i) for i in range(len(vals))], [None] * len(vals)
        # axes-aware single-data ops: input 0 as stored, the rest canonical
        return [vals[0]] + [canon(i) for i in range(1, len(vals))], [tags[0]] + [None] * (len(vals) - 1)


def opset_of(model: onnx.ModelProto) -> int:
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return int(versions[0]) if versions else 1


def check_nodes(nodes, opset: int, source: str) -> None:
    """Every node's op (default domain, in the table) and attributes; UnsupportedOnnxOp otherwise."""
    for proto in nodes:
        where = f"(node {proto.name!r})"
        if proto.domain not in ("", "ai.onnx"):
            raise UnsupportedOnnxOp(f"{source}: unsupported ONNX op '{proto.domain}.{proto.op_type}' {where}; "
                                    f"supported: the default domain's {', '.join(supported_ops())}")
        op = OPS.get(proto.op_type)
        if op is None:
            raise UnsupportedOnnxOp(f"{source}: unsupported ONNX op '{proto.op_type}' {where}; "
                                    f"supported: {', '.join(supported_ops())}")
        if op.check is not None:
            reason = op.check(Node(proto, opset))
            if reason:
                raise UnsupportedOnnxOp(f"{source}: unsupported ONNX op '{proto.op_type}' {where}: {reason}")


def fuse_attention(nodes: list, outputs: set, opset: int) -> list:
    """Replaces each `MatMul -> Softmax(axis=-1) -> MatMul` chain (the scores and weights of
    attention: each used once, by the next node only, and not a graph output) by one node
    `rexjax.FusedAttention(a, b, v)` at the second MatMul's place (`ops._fused_attention`).
    Opsets below 13 (Softmax over flattened axes) are left as they are."""
    if opset < 13:
        return nodes
    producer = {o: n for n in nodes for o in n.output if o}
    consumers: dict[str, list] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def only_use(name, user) -> bool:
        return name not in outputs and [id(u) for u in consumers.get(name, [])] == [id(user)]

    dropped, fused = set(), {}
    for sm in nodes:
        axis = next((a.i for a in sm.attribute if a.name == "axis"), -1)
        if sm.op_type != "Softmax" or sm.domain not in ("", "ai.onnx") or axis != -1:
            continue
        first = producer.get(sm.input[0])
        users = consumers.get(sm.output[0], [])
        if first is None or first.op_type != "MatMul" or len(users) != 1:
            continue
        second = users[0]
        if second.op_type != "MatMul" or second.input[0] != sm.output[0]:
            continue
        if not (only_use(first.output[0], sm) and only_use(sm.output[0], second)):
            continue
        dropped |= {id(first), id(sm)}
        fused[id(second)] = onnx.helper.make_node("FusedAttention", [first.input[0], first.input[1], second.input[1]],
                                                  [second.output[0]], name=second.name, domain=ops.FUSED_DOMAIN)
    return [fused.get(id(n), n) for n in nodes if id(n) not in dropped]


def input_layout(dims: tuple, what: str) -> bool:
    """Whether a graph input of declared `dims` (int or None per axis, batch first) is
    channels-first; ValueError starting with `what` for a rank it cannot take.

    [B, F] (2 axes): tabular, F features (run as a 1-D signal of one channel, x[F, 1]).
    [B, C, N], [B, C, H, W], [B, C, D, H, W] (3-5 axes): channels-first when axis 1 is 1, 3
    or 4 (the ReX tool's rule: its DNA model is [batch, 1, 1356]), else channels-last
    [B, *S, C]; images (4 axes) also need axis 3 to be 1, 3 or 4 then."""
    if not 2 <= len(dims) <= 5:
        raise ValueError(f"{what} has shape {list(dims)}; a classifier takes [B, F] features, a signal [B, C, N], "
                         "an image [B, C, H, W] or a volume [B, C, D, H, W] (or channels-last)")
    if len(dims) == 2:
        return False
    first = dims[1] in (1, 3, 4)
    if len(dims) == 4 and not first and dims[3] not in (1, 3, 4):
        raise ValueError(f"{what} has shape {list(dims)}: neither axis 1 nor axis 3 is 1, 3 or 4 channels")
    return first


def _dims(value_info) -> tuple:
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in shape.dim)


def compile_graph(model: onnx.ModelProto, source: str, *, channels_last: bool = True) -> Graph:
    """Checks and prepares `model` (see module doc); ValueError / UnsupportedOnnxOp naming
    `source` (the file) on anything it cannot compile."""
    opset = opset_of(model)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"{source}: opset {opset} is not supported (opsets {MIN_OPSET}-{MAX_OPSET})")
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if not inputs or not graph.output:
        raise ValueError(f"{source}: the graph has no input or no output")
    first = inputs[0]
    elem = first.type.tensor_type.elem_type
    if elem not in FLOAT_TYPES:
        raise ValueError(f"{source}: input {first.name!r} is not floating point "
                         f"({onnx.TensorProto.DataType.Name(elem) if elem else 'no tensor type'})")
    dims = _dims(first)
    channels_first = input_layout(dims, f"{source}: input {first.name!r}")
    if dims[0] is not None and dims[0] > 1:
        raise ValueError(f"{source}: input {first.name!r} has a fixed batch of {dims[0]}; export with batch 1 "
                         "or a dynamic batch axis")
    sort_graph(graph, source)
    nodes = list(graph.node)
    check_nodes(nodes, opset, source)
    op_types = tuple(sorted({n.op_type for n in nodes}))
    nodes = fuse_attention(nodes, {o.name for o in graph.output}, opset)
    params, consts = {}, {}
    for t in graph.initializer:
        value = onnx.numpy_helper.to_array(t)
        (params if t.data_type in FLOAT_TYPES else consts)[t.name] = value
    hwio = set()
    if channels_last and channels_first:
        uses: dict[str, list] = {}
        for n in nodes:
            for k, name in enumerate(n.input):
                uses.setdefault(name, []).append((n.op_type, k))
        for name, value in params.items():
            if value.ndim >= 3 and ("Conv", 1) in uses.get(name, ()) and set(uses[name]) <= {("Conv", 1), ("Shape", 0)}:
                params[name] = ops.hwio(value)
                hwio.add(name)
    return Graph(
        source=source,
        nodes=tuple(nodes),
        params=params,
        consts=consts,
        hwio=frozenset(hwio),
        input_name=first.name,
        output_name=graph.output[0].name,
        input_dims=dims,
        channels_first=channels_first,
        input_dtype=ops.np_dtype(elem),
        opset=opset,
        op_types=op_types,
        channels_last=channels_last,
    )
