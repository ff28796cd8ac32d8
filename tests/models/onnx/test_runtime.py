"""`under_onnxruntime`: the same checked ONNX file run by onnxruntime as a black box.

Oracles: the compiled graph (`load_onnx`, itself pinned to onnxruntime's stored logits in
test_parity/test_nd) on the same channels-last input, for every input layout; ReX run with
one key on both executors gives one explanation; the black-box refusals of
`Classifier.require_gradients` and mask_mode="ad"."""

from __future__ import annotations

import sys

import jax
import numpy as np
import pytest
from onnx import helper

import rexjax
from rexjax.causal import RexConfig
from rexjax.classifier import Classifier
from rexjax.models.onnx import load_onnx
from tests.models.onnx.conftest import FIXTURES, head, save
from tests.models.onnx.test_nd import _transposed_input

pytest.importorskip("onnxruntime")
from rexjax.models.onnx.runtime import OnnxRuntimeModel, under_onnxruntime  # noqa: E402

RNG = np.random.default_rng(0)


def _both(path):
    compiled = load_onnx(path)
    return compiled, under_onnxruntime(compiled, threads=1)


@pytest.mark.parametrize("name", ["resnet_dynamo18", "vit_torchscript17", "signal_cnn_dynamo18",
                                  "volume_cnn_torchscript17", "tabular_mlp_dynamo18", "binary_dynamo18"])
def test_logits_equal_the_compiled_graph(name):
    """Every input layout (NCHW, NCW, NCDHW, NF, one output) gets the compiled graph's logits
    from the channels-last x the model takes. Bugs caught: channels moved to the wrong axis
    ((0, 2, 3, 1) instead of (0, 3, 1, 2)), a [B, F, 1] feature row not squeezed to [B, F]."""
    compiled, ort = _both(FIXTURES / f"{name}.onnx")
    x = RNG.standard_normal((3, *compiled.input_shape)).astype(np.float32)
    assert (ort.input_shape, ort.input_size, ort.channels, ort.num_classes, ort.sha256) == (
        compiled.input_shape, compiled.input_size, compiled.channels, compiled.num_classes, compiled.sha256)
    np.testing.assert_allclose(np.asarray(ort(x)), np.asarray(compiled(x)), rtol=0, atol=1e-4)


def test_a_channels_last_graph_gets_its_input_untransposed(tmp_path):
    """A [B, D, H, W, C] graph takes x as it is. Bug caught: transposing every graph."""
    compiled, ort = _both(_transposed_input("volume_cnn_dynamo18", tmp_path))
    assert compiled.input_layout == "NDHWC"
    x = RNG.standard_normal((2, *compiled.input_shape)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(ort(x)), np.asarray(compiled(x)), rtol=0, atol=1e-4)


def test_a_batch_one_graph_runs_image_by_image(tmp_path):
    """A static batch-1 export gets one session call per image. Bug caught: the whole batch
    sent to a graph whose Reshape bakes in batch 1 (onnxruntime refuses it)."""
    nodes, inits = head()
    nodes[1] = helper.make_node("Reshape", ["p", "shape"], ["f"], name="flat")
    compiled, ort = _both(save(tmp_path, nodes, {**inits, "shape": np.int64([1, 3])}, in_shape=(1, 3, 8, 8)))
    assert compiled.batched is False
    x = RNG.standard_normal((3, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(ort(x)), np.asarray(compiled(x)), rtol=0, atol=1e-5)


def test_rex_gives_the_compiled_graphs_explanation():
    """One key, both executors: the same explanation and target, the map within float noise,
    and the same forward images. Bugs caught: a preprocessing or labels not carried over (a
    different target), a batch folded wrongly under vmap (a different map)."""
    compiled, ort = _both(FIXTURES / "resnet_dynamo18.onnx")
    x = np.asarray(RNG.uniform(-1, 1, compiled.input_shape), np.float32)
    config = RexConfig().replace(iters=2)
    a = rexjax.explain(compiled, x, config=config, key=jax.random.key(3))
    b = rexjax.explain(ort, x, config=config, key=jax.random.key(3))
    assert a.target == b.target and a.forward_images == b.forward_images
    np.testing.assert_array_equal(np.asarray(a.mask), np.asarray(b.mask))
    np.testing.assert_allclose(np.asarray(a.responsibility), np.asarray(b.responsibility), atol=1e-6)


def test_gradients_and_ad_are_refused_in_one_line():
    """A session has no layers: mask_mode='ad' and gradient methods refuse it by name."""
    _, ort = _both(FIXTURES / "resnet_dynamo18.onnx")
    clf = Classifier.of(ort)
    assert isinstance(ort, OnnxRuntimeModel) and clf.black_box
    with pytest.raises(ValueError, match="under onnxruntime") as err:
        clf.masked("ad")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="integrated_gradients needs gradients"):
        clf.require_gradients("integrated_gradients")


def test_preprocessing_is_the_compiled_models(tmp_path):
    """An image goes through the compiled model's Preprocess (size, channels, norm)."""
    compiled, ort = _both(FIXTURES / "binary_dynamo18.onnx")
    image = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ort.preprocess(image), compiled.preprocess(image))


def test_a_file_changed_since_it_was_loaded_is_refused(tmp_path):
    """The session runs the bytes the reader checked, and only when they hash to the compiled
    model's: a file swapped after `load_onnx` is refused in one line. Bug caught: a session
    built from the path, which would run the new file under the old model's checks."""
    path = tmp_path / "m.onnx"
    path.write_bytes((FIXTURES / "tabular_mlp_dynamo18.onnx").read_bytes())
    compiled = load_onnx(path)
    path.write_bytes((FIXTURES / "tabular_mlp_torchscript17.onnx").read_bytes())
    with pytest.raises(ValueError, match="changed since it was loaded") as err:
        under_onnxruntime(compiled)
    assert "\n" not in str(err.value)


def test_external_data_is_inline_and_covered_by_the_check(tmp_path):
    """A graph whose weights are external data: the session gets them inline from the reader
    and gives the compiled graph's logits; weights changed in the data file after the load
    are refused like a changed graph. Bug caught: a session that reads the path and its data
    file itself (it would run the new weights under the old model's checks)."""
    from tests.security import onnx_corpus

    path = onnx_corpus.valid(str(tmp_path / "model"), size=8)
    compiled, ort = _both(path)
    x = RNG.standard_normal((2, *compiled.input_shape)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(ort(x)), np.asarray(compiled(x)), rtol=0, atol=1e-5)
    (data,) = [f for f in (tmp_path / "model").iterdir() if f.suffix != ".onnx"]
    raw = bytearray(data.read_bytes())
    raw[onnx_corpus.PAD + 3] ^= 0x40  # inside the conv weight's range; the graph file is unchanged
    data.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="changed since it was loaded"):
        under_onnxruntime(compiled)


def test_without_onnxruntime_one_line(monkeypatch):
    """onnxruntime missing: one ValueError naming the extra, never an ImportError traceback."""
    compiled = load_onnx(FIXTURES / "tabular_mlp_dynamo18.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ValueError, match=r"pip install 'rexjax\[onnxruntime\]'"):
        under_onnxruntime(compiled)
