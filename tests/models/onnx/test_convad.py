"""ConvAD on imported graphs, with the checks of the zoo CNNs (`tests/helpers/ad_helpers`):
Theorem 1 (all-ones masks give the plain logits), masked pixels changed under a mask leave
the output unchanged, and the poisoning leak check (NaN at every masked intermediate).

The grey binary model (1 input channel, conv, padded max-pool, mean, sigmoid) and the
EfficientNet-V2 pattern (dynamic TF 'SAME' pads computed by Shape sub-graphs, depthwise
conv emitted as the named `depthwise_conv`, squeeze-excite, SiLU) exercise what imported
CNNs emit; the real Lite0 graph is checked in `test_lite0.py` (slow). Bugs caught: a
primitive ConvAD has no rule for, a layout transpose that loses the mask's spatial axes,
a pad or pool letting masked values in."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from onnx import helper

from rexjax.ad import UnsupportedPrimitiveError, convad
from rexjax.classifier import Classifier
from rexjax.models.onnx import load_onnx
from tests.helpers.ad_helpers import check_convad, random_masks
from tests.models.onnx.conftest import FIXTURES, head, save


def _check(name, taus):
    model = load_onnx(FIXTURES / f"{name}.onnx")
    x = jax.random.normal(jax.random.key(1), (2, *model.input_size, model.channels))
    check_convad(model.apply_fn, model.variables, x, jax.random.key(2), taus=taus)


@pytest.mark.parametrize("name", ["binary_dynamo18", "efficientnet_v2_torchscript13"])
def test_convad_theorem1_deactivation_and_poisoning(name):
    _check(name, taus=(0.0,))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet_dynamo18", "vgg_torchscript13", "convnext_dynamo20", "regnety_dynamo18",
                                  "efficientnet_v2_dynamo18", "inception_dynamo20", "binary_torchscript17"])
def test_convad_on_every_cnn_pattern(name):
    _check(name, taus=(0.0, 0.5))


def test_convad_on_an_imported_vit():
    """Attention written out (MatMul -> Softmax -> MatMul on [B, heads, N, d]) is fused at
    load into the zoo's named `attention` (ConvAD's token rule), once per block."""
    model = load_onnx(FIXTURES / "vit_torchscript17.onnx")
    assert [n.op_type for n in model.graph.nodes].count("FusedAttention") == 1
    assert "Softmax" in model.op_types and "FusedAttention" not in model.op_types  # the file's op types
    x = np.zeros((1, *model.input_size, 3), np.float32)
    assert str(jax.make_jaxpr(model.apply_fn)(model.variables, x)).count("name=attention") == 1
    _check("vit_torchscript17", taus=(0.0,))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_dynamo18", "vit_dynamo20", "vit_torchscript13", "vit_sdpa_torchscript17"])
def test_convad_on_every_vit_export(name):
    _check(name, taus=(0.0, 0.5))


def test_convad_refuses_heads_folded_into_the_batch():
    """The documented limit: dynamo's decomposition of scaled_dot_product_attention reshapes
    q, k, v to [B * heads, N, d], which mixes the batch axis with the heads."""
    model = load_onnx(FIXTURES / "vit_sdpa_dynamo20.onnx")
    x = jax.random.normal(jax.random.key(1), (2, *model.input_size, 3))
    with pytest.raises(UnsupportedPrimitiveError, match="mixes the batch axis"):
        jax.eval_shape(convad(model.apply_fn), model.variables, x, x[..., 0] > 0)  # traced only


def test_convad_on_a_batch_one_graph_run_image_by_image(tmp_path):
    """A static batch-1 export (Reshape to [1, 3]) runs under `jax.vmap`; ConvAD walks the
    vmapped jaxpr just as well."""
    nodes, inits = head("r")
    nodes[1] = helper.make_node("Reshape", ["p", "shape"], ["f"], name="flat")
    nodes[:0] = [helper.make_node("Conv", ["X", "k"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"], name="relu")]
    inits.update(k=np.random.default_rng(1).standard_normal((3, 3, 3, 3)).astype(np.float32), shape=np.int64([1, 3]))
    model = load_onnx(save(tmp_path, nodes, inits, in_shape=(1, 3, 16, 16)))
    assert model.batched is False
    x = jax.random.normal(jax.random.key(1), (2, 16, 16, 3))
    check_convad(model.apply_fn, model.variables, x, jax.random.key(2))


def test_classifier_masked_ad_on_an_imported_cnn():
    """`Classifier.of(onnx_model).masked("ad")`: all-visible masks give the model's own
    probabilities; changing masked pixels changes nothing."""
    model = load_onnx(FIXTURES / "regnety_dynamo20.onnx")
    masked = Classifier.of(model).masked("ad")
    x = np.asarray(jax.random.normal(jax.random.key(3), (*model.input_size, 3)))
    masks = np.asarray(random_masks(jax.random.key(4), 2, *model.input_size))
    probs = np.asarray(masked(x, np.ones_like(masks)))
    np.testing.assert_allclose(probs, np.asarray(jax.nn.softmax(model(x[None]), -1)).repeat(2, 0), atol=1e-6)
    same = masks[[0, 0]]  # one compiled batch shape for both calls: bitwise comparable
    a = np.asarray(masked(x, same))
    b = np.asarray(masked(np.where(same[0, ..., None] > 0, x, 10.0), same))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, probs)
