"""EfficientNet-Lite0 with its real weights, exported by torch's dynamo exporter (opset 18,
optimize=False: BatchNormalization kept, the state_dict's names) and compiled: the external
data is rebuilt from the pip package's .pth at test time (`conftest.lite0_onnx`).

Oracles: torch's logits stored with the fixture (`export.py --lite0`, same preprocessing)
for the top-1 class, onnxruntime (live, else its stored logits) within 1e-4 for the logits.
The images are preprocessed the ReX tool's way with `--norm 255 --means 0.498,...
--stds 0.502,...` (whole image -> 224x224 PIL bicubic, /255, minus mean, over std).

Bugs caught: a wrong TF 'SAME' pad (Pad nodes read in the wrong layout), BN epsilon or
ReLU6 bounds wrong, the weights mapped to the wrong initializers, external data misread."""

from __future__ import annotations

import numpy as np
import pytest

from rexjax.models.onnx import load_onnx
from rexjax.models.preprocess import Preprocess
from tests.helpers.ad_helpers import check_convad
from tests.models.conftest import IMAGES
from tests.models.onnx.conftest import FIXTURES

REX_LITE0 = dict(mean=(0.498, 0.498, 0.498), std=(0.502, 0.502, 0.502), norm=255.0)


@pytest.fixture(scope="module")
def lite0(lite0_onnx):
    return load_onnx(lite0_onnx)


def test_lite0_matches_torch_top1_and_onnxruntime_logits(lite0, lite0_onnx):
    npz = np.load(FIXTURES / "efficientnet_lite0.npz")
    assert (lite0.input_size, lite0.channels, lite0.num_classes, lite0.labels[301]) == ((224, 224), 3, 1000, "ladybug")
    prep = Preprocess(lite0.input_size, **REX_LITE0)
    x = np.stack([prep(IMAGES / str(name)) for name in npz["images"]])
    got = np.asarray(lite0(x))
    np.testing.assert_array_equal(got.argmax(-1), npz["torch_logits"].argmax(-1))
    assert list(got.argmax(-1)) == [301, 207]  # ladybug, golden retriever
    try:
        import onnxruntime as ort
    except ImportError:
        want = npz["ort_logits"]
    else:
        sess = ort.InferenceSession(str(lite0_onnx), providers=["CPUExecutionProvider"])
        want = sess.run(None, {"input": x.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_lite0_runs_channels_last_with_named_depthwise_convs(lite0):
    """Conv weights converted to HWIO once at load and the depthwise convs emitted as the
    zoo's named `depthwise_conv` (ConvAD's conv-like rule, the fast CPU path)."""
    import jax

    convs = [n for n in lite0.graph.nodes if n.op_type == "Conv"]
    grouped = [n for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert lite0.input_layout == "NCHW" and lite0.graph.hwio == {n.input[1] for n in convs}
    text = str(jax.make_jaxpr(lite0.apply_fn)(lite0.variables, np.zeros((1, 224, 224, 3), np.float32)))
    assert len(grouped) == 16 and text.count("name=depthwise_conv") == len(grouped)


@pytest.mark.slow
def test_convad_on_lite0_at_a_small_size(lite0):
    """Theorem 1, masked-pixel invariance and the poisoning check on the real Lite0 graph fed
    32 x 32 images (its pads are static, as in the torch module; 40-80 s on 2 busy cores)."""
    import jax

    small = lite0.at_size(32)
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    check_convad(small.apply_fn, small.variables, x, jax.random.key(2))
