"""Loading ONNX models: the registry's dispatch, refusals (one line naming the file, and for
ops the op type and node, before anything is traced), `at_size`, and graphs whose batch
axis is fixed to 1 (run one image at a time). Oracles: onnxruntime on the same graph
(skipped without it), and the messages the contract spells out."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import rexjax.models as M
from rexjax.models.onnx import OnnxModel, UnsupportedOnnxOp, load_onnx, supported_ops
from rexjax.models.onnx import compile as C
from tests.models.onnx.conftest import FIXTURES, fixed_input, head, save

RNG = np.random.default_rng(0)


def one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_registry_dispatches_onnx_paths(tmp_path):
    """`load`, `load_model` and `check_model` send `*.onnx` to the compiler; weights= and a
    missing file are one-line errors."""
    path = FIXTURES / "binary_torchscript13.onnx"
    assert isinstance(M.load(str(path)), OnnxModel) and isinstance(M.load(path), OnnxModel)
    model = M.load_model(str(path))
    assert model.name == "binary_torchscript13" and model.num_classes == 1
    assert M.check_model(str(path)) is None
    with pytest.raises(ValueError, match="no such ONNX file") as err:
        M.check_model(str(tmp_path / "missing.onnx"))
    one_line(err)
    with pytest.raises(ValueError, match="holds its weights"):
        M.load(path, weights=str(tmp_path / "w.pth"))


def test_unsupported_op_is_refused_at_load_naming_op_and_node(tmp_path, monkeypatch):
    nodes, inits = head()
    nodes.insert(0, helper.make_node("Selu", ["X"], ["s"], name="selu_3"))
    nodes[1].input[0] = "s"
    path = save(tmp_path, nodes, inits)
    traced = []
    monkeypatch.setattr(C.Graph, "apply", lambda *a, **k: traced.append(1))
    with pytest.raises(UnsupportedOnnxOp) as err:
        load_onnx(path)
    assert one_line(err).startswith(f"{path}: unsupported ONNX op 'Selu' (node 'selu_3'); supported: Abs, Add")
    assert isinstance(err.value, ValueError) and not traced  # refused before any trace
    assert "Conv" in supported_ops() and "Selu" not in supported_ops()


@pytest.mark.parametrize(
    "node, reason",
    [
        (helper.make_node("Pad", ["X", "pads"], ["Y0"], name="pad_w", mode="wrap"), "mode='wrap'"),
        (helper.make_node("Gelu", ["X"], ["Y0"], name="g", approximate="erf"), "approximate"),
        (helper.make_node("Conv", ["X", "k"], ["Y0"], name="c", auto_pad="SAME"), "auto_pad='SAME'"),
        (helper.make_node("MaxPool", ["X"], ["Y0", "idx"], name="mp", kernel_shape=[2, 2]), "the Indices output"),
        (helper.make_node("BatchNormalization", ["X", "s", "s", "s", "s"], ["Y0"], name="bn", training_mode=1),
         "training mode"),
    ],
    ids=["pad_wrap", "gelu_erf", "auto_pad_same", "maxpool_indices", "bn_training"],
)
def test_unsupported_attribute_values_are_refused(tmp_path, node, reason):
    nodes, inits = head("Y0")
    inits.update(pads=np.zeros(8, np.int64), k=np.ones((3, 3, 1, 1), np.float32), s=np.ones(3, np.float32))
    path = save(tmp_path, [node, *nodes], inits, opset=20)
    with pytest.raises(UnsupportedOnnxOp) as err:
        load_onnx(path)
    assert f"unsupported ONNX op '{node.op_type}' (node '{node.name}'): {reason}" in one_line(err)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(in_shape=(2, 3, 8, 8)), "fixed batch of 2"),
        (dict(in_type=TensorProto.INT64), r"is not floating point \(INT64\)"),
        (dict(in_shape=("N", 3, 8, 8, 8, 8)), r"a classifier takes \[B, F\] features, a signal"),
        (dict(in_shape=("N", 5, 8, 7)), "neither axis 1 nor axis 3"),
        (dict(opset=8), "opset 8 is not supported"),
    ],
    ids=["fixed_batch", "int_input", "rank6", "no_channels", "opset"],
)
def test_inputs_the_model_cannot_take_are_refused(tmp_path, kwargs, message):
    nodes, inits = head()
    path = save(tmp_path, nodes, inits, **kwargs)
    with pytest.raises(ValueError, match=message) as err:
        load_onnx(path)
    assert one_line(err).startswith(str(path))


def test_trace_errors_name_the_node_and_outputs_must_be_2d(tmp_path):
    nodes, inits = head()
    nodes[1] = helper.make_node("Reshape", ["p", "shape"], ["f"], name="bad_reshape")
    path = save(tmp_path, nodes, {**inits, "shape": np.int64([-1, 5])})
    with pytest.raises(ValueError, match=r"node 'bad_reshape' \(Reshape\)") as err:
        load_onnx(path)
    assert one_line(err).startswith(str(path))
    path = save(tmp_path, [helper.make_node("Relu", ["X"], ["Y"], name="r")], name="r.onnx")
    with pytest.raises(ValueError, match=r"first output has shape \(2, 3, 8, 8\)"):
        load_onnx(path)


def test_cycles_and_undefined_inputs_are_one_line(tmp_path):
    """The reader refuses them first; the compiler, given a graph in memory, too (the reader's sort_graph)."""
    nodes = [helper.make_node("Relu", ["b"], ["a"], name="n1"), helper.make_node("Relu", ["a"], ["b"], name="n2"),
             helper.make_node("Add", ["X", "a"], ["Y"], name="n3")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 3, 4, 4])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    opset = [helper.make_opsetid("", 13)]
    with pytest.raises(ValueError, match="the graph has a cycle") as err:
        C.compile_graph(helper.make_model(graph, opset_imports=opset), "m.onnx")
    one_line(err)
    graph.node.pop(1)
    with pytest.raises(ValueError, match="consumes 'b', which nothing produces"):
        C.compile_graph(helper.make_model(graph, opset_imports=opset), "m.onnx")


def test_nodes_out_of_file_order_are_sorted(tmp_path):
    """A graph whose nodes are stored in reverse order (valid once sorted) gives the logits
    onnxruntime gave for the ordered file: through the reader (which sorts too) and
    compiled straight from the proto (the compiler's call of reader.sort_graph)."""
    name = "efficientnet_v2_torchscript13"
    proto = onnx.load(str(FIXTURES / f"{name}.onnx"))
    nodes = list(proto.graph.node)[::-1]
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    path = tmp_path / "reversed.onnx"
    onnx.save(proto, str(path))
    npz = np.load(FIXTURES / f"{name}.npz")
    x = fixed_input(npz).transpose(0, 2, 3, 1)
    model = load_onnx(path)
    np.testing.assert_allclose(np.asarray(model.apply_fn(model.variables, x)), npz["ort_logits"], rtol=0, atol=1e-4)
    graph = C.compile_graph(proto, "reversed.onnx")
    np.testing.assert_allclose(np.asarray(graph.apply(graph.params, x)), npz["ort_logits"], rtol=0, atol=1e-4)


def test_huge_constant_shapes_are_refused(tmp_path):
    nodes, inits = head("e")
    nodes.insert(0, helper.make_node("Expand", ["X", "big"], ["e"], name="expand"))
    path = save(tmp_path, nodes, {**inits, "big": np.int64([1 << 24, 1, 1, 1, 1])})
    with pytest.raises(ValueError, match=r"node 'expand' \(Expand\): an output of \d+ elements \(limit \d+\)$") as err:
        load_onnx(path)
    one_line(err)


def test_batch_fixed_to_one_runs_image_by_image(tmp_path):
    """A static batch-1 export whose Reshape bakes in the batch: the model vmaps one image
    at a time, and each row equals onnxruntime's run on that image alone."""
    ort = pytest.importorskip("onnxruntime")
    nodes, inits = head()
    nodes[1] = helper.make_node("Reshape", ["p", "shape"], ["f"], name="flat")
    path = save(tmp_path, nodes, {**inits, "shape": np.int64([1, 3])}, in_shape=(1, 3, 8, 8))
    model = load_onnx(path)
    assert model.batched is False
    x = RNG.standard_normal((3, 3, 8, 8)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([sess.run(None, {"X": x[i : i + 1]})[0] for i in range(3)])
    np.testing.assert_allclose(np.asarray(model(x.transpose(0, 2, 3, 1))), want, rtol=0, atol=1e-5)


def test_channels_last_graph(tmp_path):
    """An NHWC graph (tf2onnx's pattern: Transpose to NCHW, then Conv) takes the input as it
    is: layout, channels and size read from axes 3 and 1-2; logits as onnxruntime's."""
    ort = pytest.importorskip("onnxruntime")
    nodes, inits = head("c")
    nodes[:0] = [helper.make_node("Transpose", ["X"], ["t"], name="to_nchw", perm=[0, 3, 1, 2]),
                 helper.make_node("Conv", ["t", "k"], ["c"], name="conv", pads=[1, 1, 1, 1])]
    inits["k"] = RNG.standard_normal((3, 3, 3, 3)).astype(np.float32)
    path = save(tmp_path, nodes, inits, in_shape=("N", 7, 9, 3))
    model = load_onnx(path)
    assert (model.input_layout, model.channels, model.input_size) == ("NHWC", 3, (7, 9))
    x = RNG.standard_normal((2, 7, 9, 3)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"X": x})[0]
    np.testing.assert_allclose(np.asarray(model(x)), want, rtol=0, atol=1e-5)


def test_at_size_follows_the_graph(tmp_path):
    """A convolutional graph takes another size (its spatial dims made symbolic so that
    onnxruntime runs it there too: the logits agree); a graph with a fixed flatten size
    (VGG) refuses with its node's reason, naming input_size."""
    ort = pytest.importorskip("onnxruntime")
    proto = onnx.load(str(FIXTURES / "resnet_torchscript17.onnx"))
    for d, name in zip(proto.graph.input[0].type.tensor_type.shape.dim[2:], ("H", "W")):
        d.dim_param = name
    path = tmp_path / "resnet_any.onnx"
    onnx.save(proto, str(path))
    model = load_onnx(path)
    assert model.input_size == (224, 224)  # symbolic spatial dims: the default size
    small = model.at_size(29, 37)
    assert small.input_size == (29, 37) and small.preprocessing.size == (29, 37)
    x = RNG.standard_normal((2, 3, 29, 37)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(np.asarray(small(x.transpose(0, 2, 3, 1))), want, rtol=0, atol=1e-4)
    vgg = load_onnx(FIXTURES / "vgg_dynamo20.onnx")
    with pytest.raises(ValueError, match=r"input_size 40x40 is not accepted by the graph: .*node") as err:
        vgg.at_size(40)
    one_line(err)


def test_rexjax_never_imports_onnxruntime_but_for_the_opt_in_executor():
    """onnxruntime is optional: the compiler and everything else never import it; only the
    `--onnx_runtime` executor (`models/onnx/runtime.py`) does, inside the function that
    builds a session, so importing rexjax never needs it."""
    root = Path(M.__file__).resolve().parents[1]
    allowed = root / "models" / "onnx" / "runtime.py"
    seen = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        top = set(map(id, tree.body))
        for n in ast.walk(tree):
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else (
                [n.module or ""] if isinstance(n, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "onnxruntime" for name in names):
                assert path == allowed and id(n) not in top, path
                seen.append(path)
    assert seen == [allowed]


def test_fixed_input_matches_the_recorded_shape():
    npz = np.load(FIXTURES / "resnet_dynamo18.npz")
    assert fixed_input(npz).shape == tuple(npz["shape"]) == npz["ort_logits"].shape[:1] + (3, 33, 45)
