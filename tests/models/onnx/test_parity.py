"""Compiled exports of each zoo family's op pattern (`tests/fixtures/onnx/export.py`: dynamo
opset 18 and 20, TorchScript opset 13 and 17, dynamic batch; ViT also with timm's fused
`scaled_dot_product_attention`, decomposed by the exporters) against onnxruntime: the
logits stored beside each fixture (with provenance) and, when onnxruntime is importable,
a live run on the same input. Max abs logit difference <= 1e-4 (measured: <= 4e-7).

Bugs caught: any op computing the wrong thing in context (an axis of a channels-last value
read as canonical, a shape sub-graph folded wrong, a BN/LayerNorm normaliser dropped), the
batch axis baked in, and a stored reference drifting from onnxruntime."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest

from rexjax.models.onnx import OnnxModel, load_onnx
from tests.models.onnx.conftest import FIXTURES, fixed_input
from tests.models.onnx.test_nd import ND_NAMES

FAMILIES = ("resnet", "vgg", "convnext", "regnety", "efficientnet_v2", "inception", "vit", "vit_sdpa", "binary")
EXPORTS = ("dynamo18", "dynamo20", "torchscript13", "torchscript17")
NO_EXPORT = {"vit_sdpa_torchscript13"}  # TorchScript exports scaled_dot_product_attention from opset 14
NAMES = [f"{f}_{e}" for f in FAMILIES for e in EXPORTS if f"{f}_{e}" not in NO_EXPORT]


def _load(name):
    npz = np.load(FIXTURES / f"{name}.npz")
    return load_onnx(FIXTURES / f"{name}.onnx"), npz, fixed_input(npz)


@pytest.mark.parametrize("name", NAMES)
def test_logits_match_onnxruntime(name):
    model, npz, x = _load(name)
    got = np.asarray(model.apply_fn(model.variables, x.transpose(0, 2, 3, 1)))  # eager: no compile per fixture
    assert got.shape == npz["ort_logits"].shape
    np.testing.assert_allclose(got, npz["ort_logits"], rtol=0, atol=1e-4)
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(FIXTURES / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    live = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, live, rtol=0, atol=1e-4)


def test_fixtures_are_small_and_record_provenance():
    on_disk = sorted(p.stem for p in FIXTURES.glob("*.onnx") if p.stem != "efficientnet_lite0")
    assert on_disk == sorted([*NAMES, *ND_NAMES])
    for name in [*NAMES, *ND_NAMES]:
        assert (FIXTURES / f"{name}.onnx").stat().st_size < 200_000, name
        prov = json.loads(str(np.load(FIXTURES / f"{name}.npz")["provenance"]))
        exporter, opset = prov["exporter"], prov["opset"]
        assert name.endswith(f"{exporter}{opset}") and {"torch", "onnx", "onnxruntime"} <= set(prov), name
        assert onnx.load(str(FIXTURES / f"{name}.onnx")).opset_import[0].version == opset


def test_jitted_call_batches_and_records_the_graph():
    """`model(x)` (jitted) on batches of 1 and 3 (dynamic batch), and the model's record
    read independently from the file: name, sha256, layout, sizes, opset, op types, and
    the float initializers as parameters (Conv weights HWIO)."""
    name = "regnety_torchscript13"
    model, npz, x = _load(name)
    path = FIXTURES / f"{name}.onnx"
    proto = onnx.load(str(path))
    assert isinstance(model, OnnxModel) and model.name == name
    assert model.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (model.input_layout, model.channels, model.input_size, model.num_classes) == ("NCHW", 3, (33, 45), 10)
    assert model.labels == tuple(str(i) for i in range(10)) and model.has_weights and model.feature_names == ()
    assert model.opset == 13 and model.op_types == tuple(sorted({n.op_type for n in proto.graph.node}))
    floats = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer if t.data_type == 1}
    assert set(model.variables["params"]) == set(floats)
    conv_w = next(n.input[1] for n in proto.graph.node if n.op_type == "Conv")
    np.testing.assert_array_equal(model.variables["params"][conv_w], floats[conv_w].transpose(2, 3, 1, 0))
    nhwc = x.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(model(nhwc[:1])), npz["ort_logits"][:1], rtol=0, atol=1e-4)
    x3 = np.concatenate([nhwc, nhwc[:1]])
    want = np.concatenate([npz["ort_logits"], npz["ort_logits"][:1]])
    np.testing.assert_allclose(np.asarray(model(x3)), want, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match=r"f32\[B,H,W,3\]"):
        model(x)  # NCHW given to an NHWC model


def test_grey_binary_model_and_its_preprocessing():
    """1 input channel, 1 output: preprocessing converts to grey ("L") and divides by 255
    (the ReX tool's default pipeline), the labels are ("0",)."""
    from PIL import Image

    model, _, _ = _load("binary_dynamo20")
    assert (model.channels, model.num_classes, model.labels) == (1, 1, ("0",))
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    grey = np.asarray(Image.fromarray(rgb).convert("L").resize((45, 33), Image.Resampling.BICUBIC), np.float32)
    np.testing.assert_allclose(model.preprocess(rgb), (grey / 255.0)[..., None], rtol=0, atol=1e-7)
    assert model(model.preprocess(rgb)[None]).shape == (1, 1)
