"""Crafted ONNX files (hostile or broken), built at test time with `onnx.helper` (or, for
the few that no valid protobuf can express, as raw bytes): `build(folder)` writes every case
into its own subfolder as `model.onnx` (beside whatever external data it names) and returns
`{name: (path, message_regex)}`. Each case is one attack from the threat model in
`rexjax.models.onnx.reader`; most files are a few hundred bytes.

`valid(folder)` writes the valid tiny classifier they are derived from: Conv + Relu +
GlobalAveragePool + Flatten + Gemm, the conv weight in external data (`weights.bin`, at an
offset, inside the folder), the conv bias as `float_data`, the Gemm weights as `raw_data`;
`WEIGHTS` holds the arrays written.

Run as a script (`python -m tests.security.onnx_corpus OUT_DIR`) to write the corpus.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.helpers import torch_pickle as tp

OPSET = 18
IR_VERSION = 10  # what torch's exporter writes (onnx 1.23's default, 14, is newer than onnxruntime reads)
PAD = 16  # bytes before the conv weight in weights.bin (its offset)
_rng = np.random.default_rng(0)
WEIGHTS = {
    "conv.w": _rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
    "conv.b": _rng.standard_normal(4).astype(np.float32),
    "fc.w": _rng.standard_normal((4, 5)).astype(np.float32),
    "fc.b": _rng.standard_normal(5).astype(np.float32),
}


def _ext(t: TensorProto, location: str, offset: int | None = PAD, length: int | None = None, **more) -> TensorProto:
    """`t` with its data moved to external data entries (its raw_data dropped)."""
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": offset, "length": length, **more}
    for key, value in entries.items():
        if value is not None:
            t.external_data.add(key=key, value=str(value))
    return t


def model(nodes=None, initializers=None, inputs=None, outputs=None, **kw) -> onnx.ModelProto:
    """The tiny classifier x f32[N,3,8,8] -> y f32[N,5] (the given parts replaced; it runs
    on any image size)."""
    conv_b = helper.make_tensor("conv.b", TensorProto.FLOAT, [4], WEIGHTS["conv.b"].tolist())  # float_data
    if initializers is None:
        conv_w = _ext(numpy_helper.from_array(WEIGHTS["conv.w"], "conv.w"), "weights.bin",
                      length=WEIGHTS["conv.w"].nbytes)
        initializers = [conv_w, conv_b, numpy_helper.from_array(WEIGHTS["fc.w"], "fc.w"),
                        numpy_helper.from_array(WEIGHTS["fc.b"], "fc.b")]
    if nodes is None:
        nodes = [
            helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["p"]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"]),
        ]
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])]
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION, **kw)


def _weights_bin(folder: str) -> None:
    with open(os.path.join(folder, "weights.bin"), "wb") as f:
        f.write(b"\xa5" * PAD + WEIGHTS["conv.w"].tobytes() + b"\x5a" * 8)


def _save(folder: str, m: onnx.ModelProto | bytes, name: str = "model.onnx") -> str:
    os.makedirs(folder, exist_ok=True)
    _weights_bin(folder)
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(m if isinstance(m, bytes) else m.SerializeToString())
    return path


def valid(folder: str, size: int = 8) -> str:
    """The valid tiny model (and its weights.bin) in `folder`, input f32[N,3,size,size]; its path."""
    return _save(folder, model(inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])]))


def _with_conv_w(folder: str, **ext) -> str:
    """The tiny model whose conv weight's external entries are `ext` (defaults otherwise)."""
    args = {"location": "weights.bin", "offset": PAD, "length": WEIGHTS["conv.w"].nbytes, **ext}
    conv_w = _ext(numpy_helper.from_array(WEIGHTS["conv.w"], "conv.w"), **args)
    rest = [numpy_helper.from_array(WEIGHTS[k], k) for k in ("conv.b", "fc.w", "fc.b")]
    return _save(folder, model(initializers=[conv_w, *rest]))


def _symlink_out(folder: str) -> str:
    outside = os.path.join(os.path.dirname(folder), "outside.bin")  # the right bytes, but outside the folder
    with open(outside, "wb") as f:
        f.write(b"\0" * PAD + WEIGHTS["conv.w"].tobytes())
    path = _with_conv_w(folder, location="link.bin")
    os.symlink(outside, os.path.join(folder, "link.bin"))
    return path


def _fifo_data(folder: str) -> str:
    path = _with_conv_w(folder, location="pipe.bin")
    os.mkfifo(os.path.join(folder, "pipe.bin"))
    return path


def _dir_data(folder: str) -> str:
    path = _with_conv_w(folder, location="sub")
    os.mkdir(os.path.join(folder, "sub"))
    return path


def _tensor(folder: str, t: TensorProto) -> str:
    """The tiny model with `t` as one more initializer."""
    m = model()
    m.graph.initializer.append(t)
    return _save(folder, m)


def _raw(name: str, data_type: int, dims: list[int], raw: bytes = b"") -> TensorProto:
    t = TensorProto(name=name, data_type=data_type, raw_data=raw)
    t.dims.extend(dims)
    return t


def _graph(folder: str, nodes, inputs=None, outputs=None) -> str:
    return _save(folder, model(nodes=nodes, inputs=inputs, outputs=outputs))


def _relu(src: str, dst: str, **kw) -> onnx.NodeProto:
    return helper.make_node("Relu", [src], [dst], **kw)


def varint(n: int) -> bytes:
    """`n` as a protobuf base-128 varint."""
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _many(folder: str, graph_field: int, item: bytes, count: int) -> str:
    """A model whose graph repeats `item` (a serialised message) `count` times as field
    `graph_field`, built by repeating bytes (onnx.helper would take seconds)."""
    m = model()
    graph = m.graph.SerializeToString() + _field(graph_field, item) * count
    m.ClearField("graph")
    return _save(folder, m.SerializeToString() + _field(7, graph))  # ModelProto.graph is field 7


def _if_node(folder: str) -> str:
    branch = helper.make_graph([helper.make_node("Identity", ["y0"], ["b"])], "branch", [],
                               [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    cond = numpy_helper.from_array(np.array(True), "cond")
    m = model(nodes=[*model().graph.node[:4], helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y0"]),
                     helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)])
    m.graph.initializer.append(cond)
    return _save(folder, m)


def _function(folder: str) -> str:
    m = model()
    m.functions.append(helper.make_function("local", "F", ["a"], ["b"], [_relu("a", "b")],
                                            [helper.make_opsetid("", OPSET)]))
    return _save(folder, m)


def _sparse(folder: str) -> str:
    m = model()
    values = numpy_helper.from_array(np.ones(2, np.float32), "s")
    indices = numpy_helper.from_array(np.array([0, 3], np.int64), "s_idx")
    m.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    return _save(folder, m)


def _pth(folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    pth = os.path.join(folder, "weights.pth")
    storage = np.arange(12, dtype=np.float32)
    tp.write_zip(pth, [("w", tp.tensor("FloatStorage", "0", 12, 0, (3, 4), (4, 1)))], {"0": storage})
    path = os.path.join(folder, "model.onnx")
    os.replace(pth, path)
    return path


def _special(kind: str):
    def make(folder: str) -> str:
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "model.onnx")
        if kind == "fifo":
            os.mkfifo(path)
        else:
            os.mkdir(path)
        return path
    return make


def _truncated(folder: str) -> str:
    data = model().SerializeToString()
    return _save(folder, data[: len(data) // 2])


def _cycle(folder: str) -> str:
    return _graph(folder, [*model().graph.node, _relu("b", "a"), _relu("a", "b")])


def _nodes(count: int):
    return lambda folder: _many(folder, 1, _relu("x", "r").SerializeToString(), count)  # GraphProto.node: field 1


_F = TensorProto.FLOAT
_W = WEIGHTS["conv.w"].nbytes
_OUT = "'conv.w' has an external data location .* that leads out of the model's folder"

# name -> (builder(folder) -> path, message regex)
CASES = {
    "external_parent_path": (lambda d: _with_conv_w(d, location="../../etc/passwd"), _OUT),
    "external_absolute_path": (lambda d: _with_conv_w(d, location="/etc/passwd"), "absolute external data location"),
    "external_symlink_out": (_symlink_out, _OUT),
    "external_fifo": (_fifo_data, r"'pipe.bin' is a FIFO \(named pipe\), not a regular file"),
    "external_directory": (_dir_data, "'sub' is a directory, not a regular file"),
    "external_missing": (lambda d: _with_conv_w(d, location="nothing.bin"), "'nothing.bin' does not exist"),
    "external_offset_beyond_end": (lambda d: _with_conv_w(d, offset=1 << 40), r"wants bytes 1099511627776\.\."),
    "external_length_mismatch": (lambda d: _with_conv_w(d, length=_W - 4), f"external data length is {_W - 4}"),
    "external_bad_checksum": (lambda d: _with_conv_w(d, checksum="0" * 40), "fails its SHA-1 checksum"),
    "external_unknown_key": (lambda d: _with_conv_w(d, basepath="/etc"), "unknown external data key 'basepath'"),
    "external_negative_offset": (lambda d: _with_conv_w(d, offset=-8), r"offset '-8' \(not a non-negative integer\)"),
    "declared_1e12_elements": (lambda d: _tensor(d, _raw("big", _F, [10**12], b"\0" * 4)),
                               "more than 2147483648 elements"),
    "declared_more_than_held": (lambda d: _tensor(d, _raw("big", _F, [1000, 1000], b"\0" * 4)),
                                r"\(4000000 bytes\) but holds 4 bytes"),
    "typed_count_mismatch": (lambda d: _tensor(d, TensorProto(name="t", data_type=_F, dims=[3], float_data=[1.0, 2.0])),
                             r"\(3 elements\) but float_data holds 2"),
    "wrong_typed_field": (lambda d: _tensor(d, TensorProto(name="t", data_type=_F, dims=[2], int64_data=[1, 2])),
                          "of type FLOAT holds int64_data"),
    "negative_dims": (lambda d: _tensor(d, _raw("neg", _F, [-1, 4], b"")), "negative dim -1"),
    "string_tensor": (lambda d: _tensor(d, helper.make_tensor("s", TensorProto.STRING, [1], [b"hi"])),
                      "data type STRING"),
    "complex_tensor": (lambda d: _tensor(d, _raw("cplx", TensorProto.COMPLEX64, [1], b"\0" * 8)),
                       "data type COMPLEX64"),
    "constant_node_1e12": (lambda d: _graph(d, [helper.make_node("Constant", [], ["k"], value=_raw("", _F, [10**12])),
                                                *model().graph.node]),
                           "attribute 'value' of node 'Constant'.*more than"),
    "cycle_two_nodes": (_cycle, "cycle through node"),
    "self_loop": (lambda d: _graph(d, [*model().graph.node, helper.make_node("Add", ["x", "s"], ["s"])]),
                  "cycle through node 'Add'"),
    "nodes_200001": (_nodes(200_001), "more than 100000 nodes"),
    "empty_messages_1000001": (lambda d: _many(d, 13, b"", 1_000_001), "more than 1000000 protobuf messages"),
    "duplicate_output": (lambda d: _graph(d, [*model().graph.node, _relu("x", "c")]), "value 'c' is produced twice"),
    "duplicate_initializer": (lambda d: _tensor(d, numpy_helper.from_array(WEIGHTS["fc.b"], "fc.b")),
                              "initializer 'fc.b' is defined twice"),
    "dangling_input": (lambda d: _graph(d, [*model().graph.node, _relu("ghost", "g")]),
                       "consumes 'ghost', which nothing"),
    "dangling_output": (lambda d: _graph(d, model().graph.node[:4]), "graph output 'y' is produced by nothing"),
    "if_subgraph": (_if_node, "control flow is not supported"),
    "custom_domain": (lambda d: _graph(d, [*model().graph.node, _relu("y", "z", domain="com.evil")]),
                      "custom domain 'com.evil'"),
    "local_function": (_function, "local functions"),
    "sparse_initializer": (_sparse, "sparse initializers are not supported"),
    "truncated": (_truncated, "not an ONNX model"),
    "empty_file": (lambda d: _save(d, b""), "the model file is empty"),
    "random_bytes": (lambda d: _save(d, np.random.default_rng(1).bytes(300)), "not an ONNX model"),
    "no_graph": (lambda d: _save(d, onnx.ModelProto(ir_version=10).SerializeToString()), "no graph"),
    "pth_renamed": (_pth, "not an ONNX model"),
    "fifo_model": (_special("fifo"), "the model file is a FIFO"),
    "directory_model": (_special("dir"), "the model file is a directory"),
}


def build(folder: str) -> dict[str, tuple[str, str]]:
    """Every case under `folder` (one subfolder each): {name: (path, message regex)}."""
    return {name: (make(os.path.join(folder, name)), regex) for name, (make, regex) in CASES.items()}


if __name__ == "__main__":
    for name, (path, _) in build(sys.argv[1]).items():
        print(name, path)
