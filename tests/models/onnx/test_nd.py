"""ONNX graphs of signals [B, C, N], volumes [B, C, D, H, W] and features [B, F]
(`compile.input_layout`), their channels-last forms, ConvAD on them, and the model's
SHA-256 over the bytes the reader parsed (external weights included).

Oracles: onnxruntime (the logits stored beside each torch export, with provenance, and a
live run on the same input), hashlib over the files' bytes, and the ConvAD checks of the
zoo CNNs (`tests/helpers/ad_helpers.check_convad`). The fixtures: `tests/fixtures/onnx/
export.py` (`ND_FAMILIES`: a 1-D CNN, a 3-D CNN, an MLP on 20 features; dynamo opset 18,
TorchScript opset 17)."""

from __future__ import annotations

import hashlib
import json

import jax
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from rexjax.models.onnx import load_onnx
from tests.helpers.ad_helpers import check_convad
from tests.models.onnx.conftest import FIXTURES, fixed_input, save

FAMILIES = {"signal_cnn": ((64, 1), "NCW"), "volume_cnn": ((8, 10, 12, 1), "NCDHW"), "tabular_mlp": ((20, 1), "NF")}
ND_NAMES = tuple(f"{f}_{e}" for f in FAMILIES for e in ("dynamo18", "torchscript17"))


def channels_last(x: np.ndarray) -> np.ndarray:
    """An ONNX input f32[B, C, *S] (or features f32[B, F]) -> the model's f32[B, *S, C] (f32[B, F, 1])."""
    return x[..., None] if x.ndim == 2 else np.moveaxis(x, 1, -1)


def _ort(path, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", ND_NAMES)
def test_logits_match_onnxruntime(name):
    """Bugs caught: a Conv1d/Conv3d weight converted with the wrong axis order, a pool or BN
    normalising over the wrong axis, the channel axis of a signal taken as its length, the
    features of a [B, F] graph given with their channel axis."""
    model = load_onnx(FIXTURES / f"{name}.onnx")
    npz = np.load(FIXTURES / f"{name}.npz")
    prov = json.loads(str(npz["provenance"]))
    assert name.endswith(f"{prov['exporter']}{prov['opset']}") and "onnxruntime" in prov
    shape, layout = FAMILIES[name.rsplit("_", 1)[0]]
    assert (model.input_shape, model.rank, model.input_layout) == (shape, len(shape) - 1, layout)
    x = fixed_input(npz)
    got = np.asarray(model.apply_fn(model.variables, channels_last(x)))
    np.testing.assert_allclose(got, npz["ort_logits"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(got, _ort(FIXTURES / f"{name}.onnx", x), rtol=0, atol=1e-4)


def _transposed_input(name: str, tmp_path):
    """The fixture `name` with a channels-last input X f32[batch, *S, C] and a Transpose to
    its own channels-first input in front: the form of a channels-last export."""
    proto = onnx.load(str(FIXTURES / f"{name}.onnx"))
    old = proto.graph.input[0]
    dims = [d.dim_value or d.dim_param for d in old.type.tensor_type.shape.dim]
    rank = len(dims)
    new = helper.make_tensor_value_info("X", TensorProto.FLOAT, [dims[0], *dims[2:], dims[1]])
    proto.graph.node.insert(0, helper.make_node("Transpose", ["X"], [old.name], name="to_first",
                                                perm=[0, rank - 1, *range(1, rank - 1)]))
    del proto.graph.input[:]
    proto.graph.input.append(new)
    path = tmp_path / f"{name}_last.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize("name", ["signal_cnn_torchscript17", "volume_cnn_dynamo18"])
def test_channels_last_inputs(name, tmp_path):
    """[B, N, C] and [B, D, H, W, C] (axis 1 not 1, 3 or 4) are read channels-last and taken
    as they are. Bug caught: a channels-last signal transposed as if channels-first (the
    shapes [64, 1] and [1, 64] swap)."""
    path = _transposed_input(name, tmp_path)
    model = load_onnx(path)
    x = fixed_input(np.load(FIXTURES / f"{name}.npz"))
    xl = channels_last(x)
    assert model.input_layout in ("NWC", "NDHWC") and model.input_shape == xl.shape[1:]
    np.testing.assert_allclose(np.asarray(model(xl)), _ort(path, xl), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", ["signal_cnn_dynamo18", "volume_cnn_torchscript17"])
def test_convad_on_signals_and_volumes(name):
    """Theorem 1, masked elements changed under a mask leave the output unchanged, and the
    poisoning leak check, as for the image CNNs. Bug caught: a 1-D/3-D pool or conv that lets
    masked values in, a layout transpose that loses the mask's position axes."""
    model = load_onnx(FIXTURES / f"{name}.onnx")
    x = jax.random.normal(jax.random.key(1), (2, *model.input_shape))
    check_convad(model.apply_fn, model.variables, x, jax.random.key(2), taus=(0.0,))


def test_the_tool_dna_layout_and_refusals(tmp_path):
    """[batch, 1, 1356] (the tool's DNA model) is channels-first x[1356, 1]; a symbolic
    length is refused (only images default to 224 x 224); images-only operations on other
    ranks are one-line ValueErrors."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("GlobalAveragePool", ["X"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w", "b"], ["Y"], name="fc", transB=1)]
    inits = {"w": rng.standard_normal((2, 1)).astype(np.float32), "b": np.zeros(2, np.float32)}
    model = load_onnx(save(tmp_path, nodes, inits, in_shape=("batch", 1, 1356), name="dna.onnx"))
    assert (model.input_shape, model.input_layout, model.preprocessing) == ((1356, 1), "NCW", None)
    x = rng.standard_normal((3, 1356, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(model(x)), x.mean(1) @ inits["w"].T, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"x must be f32\[B,N,1\]"):
        model(x[:, :, 0])
    with pytest.raises(ValueError, match="takes arrays"):
        model.preprocess(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="image models only"):
        model.at_size(64)
    path = save(tmp_path, nodes, inits, in_shape=("batch", 1, "n"), name="free.onnx")
    with pytest.raises(ValueError, match=r"free\.onnx: input 'X' has shape \[None, 1, None\].*must be fixed"):
        load_onnx(path)


def _external_copy(folder, weights: np.ndarray):
    """A graph f32[B, 20] -> Gemm -> f32[B, 3] whose weight lives in `weights.bin`."""
    folder.mkdir()
    w = numpy_helper.from_array(weights, "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", str(weights.nbytes))):
        w.external_data.add(key=key, value=value)
    graph = helper.make_graph([helper.make_node("Gemm", ["X", "w"], ["Y"], name="fc", transB=1)], "g",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", 20])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(folder / "m.onnx"))
    (folder / "weights.bin").write_bytes(weights.tobytes())
    return folder / "m.onnx"


def test_sha256_covers_the_external_weights(tmp_path):
    """Two files with the same graph and different external weights get different hashes:
    each the SHA-256 of the model file's bytes followed by its data file's. Bug caught: a
    hash of the graph file alone (the same for both)."""
    rng = np.random.default_rng(0)
    paths = [_external_copy(tmp_path / f"m{i}", rng.standard_normal((3, 20)).astype(np.float32)) for i in range(2)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    models = [load_onnx(p) for p in paths]
    for p, m in zip(paths, models):
        assert m.sha256 == hashlib.sha256(p.read_bytes() + (p.parent / "weights.bin").read_bytes()).hexdigest()
        assert m.input_shape == (20, 1) and m.input_layout == "NF"
    assert models[0].sha256 != models[1].sha256
