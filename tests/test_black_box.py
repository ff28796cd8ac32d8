"""`Classifier.from_callable`: a NumPy function as a black box (`rexjax.black_box`).

The planted-patch classifier: class 1's logit is 8 (m - 1/2) with m the mean brightness of
a 6 x 6 patch, class 0's is 0. On an image whose patch is bright (1.0, the rest 0.2) class 1
wins, and hiding half the patch or more (masked pixels show 0) makes class 0 win: the answer
of every attribution is "the patch". The same function written in jnp is the oracle every black-box
result is compared with.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rexjax
from rexjax import methods
from rexjax.black_box import BlackBox
from rexjax.classifier import BLACK_BOX_METHODS, Classifier
from rexjax.metrics import insertion_deletion, make_area

H, W = 16, 16
PATCH = (slice(4, 10), slice(8, 14))
IN_PATCH = np.zeros((H, W), bool)
IN_PATCH[PATCH] = True
X = np.full((H, W, 3), 0.2, np.float32)
X[PATCH] = 1.0

# Tiny budgets: each run is a few model calls on 16 x 16 images.
SMALL = {
    "rex": dict(iters=4),
    "rise": dict(n_masks=128, grid=4),
    "shape": dict(n_masks=256, grid=4),
    "occlusion": dict(window=2, stride=2),
    "lime": dict(n_samples=40, superpixel="grid"),
    "kernel_shap": dict(n_samples=100, superpixel="grid"),
}


def patch_scores_np(x):
    """NumPy x f32[B, 16, 16, 3] -> logits f32[B, 2]."""
    patch = x[:, PATCH[0], PATCH[1], :].mean((1, 2, 3))
    return np.stack([np.zeros_like(patch), 8 * (patch - 0.5)], -1)


def patch_scores_jnp(x):
    """The same function in jnp (the oracle)."""
    patch = x[:, PATCH[0], PATCH[1], :].mean((1, 2, 3))
    return jnp.stack([jnp.zeros_like(patch), 8 * (patch - 0.5)], -1)


class Recorder:
    """patch_scores_np that records the batch size of every call."""

    def __init__(self):
        self.sizes = []

    def __call__(self, x):
        self.sizes.append(x.shape[0])
        return patch_scores_np(x)


@pytest.fixture(scope="module")
def pair():
    return Classifier.from_callable(patch_scores_np, (H, W, 3)), Classifier(patch_scores_jnp)


def test_black_box_list_is_the_registry_minus_the_refusals():
    """The methods named in the refusal are registered (the refusal test below covers the rest)."""
    assert set(BLACK_BOX_METHODS) <= set(methods.names()) and set(SMALL) == set(BLACK_BOX_METHODS)


@pytest.mark.parametrize("rule", ["tool", "main_effect"])
def test_rex_equals_the_jax_function(pair, rule):
    """Same key: the same explanation, and the same responsibility map: bit for bit under the
    tool's rule, which only uses pass/fail decisions of the model (argmax, and the target's
    confidence against a threshold), the same for the two functions on this image; within
    float rounding under the default "main_effect" rule, which adds up the confidences (host
    NumPy and XLA round them differently). The black box changes how the scores are
    computed, not the search. Catches a callback that scrambles rows (vmap axes flattened in
    the wrong order), drops a chunk or pads one."""
    bb, jc = pair
    got = rexjax.explain(bb, X, key=3, responsibility=rule, **SMALL["rex"])
    want = rexjax.explain(jc, X, key=3, responsibility=rule, **SMALL["rex"])
    assert got.target == want.target == 1
    if rule == "tool":
        np.testing.assert_array_equal(got.responsibility, want.responsibility)
    else:
        np.testing.assert_allclose(got.responsibility, want.responsibility, rtol=1e-5, atol=0)
    np.testing.assert_array_equal(got.mask, want.mask)
    assert got.sufficient and got.mask.any() and not got.mask[~IN_PATCH].any()  # the known answer
    assert got.forward_images == want.forward_images


def in_patch(a) -> bool:
    """The known answer: the map is higher in the patch than outside (by half its spread)."""
    a = np.asarray(a)
    return a[IN_PATCH].mean() > a[~IN_PATCH].mean() + 0.5 * a.std()


@pytest.mark.parametrize("name", sorted(set(SMALL) - {"rex"}))
def test_sampling_methods_find_the_patch(name, pair):
    bb, _ = pair
    got = methods.make(name, **SMALL[name])(bb, X, key=5)
    assert in_patch(got.map), name


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(SMALL) - {"rex"}) + ["noise_tunnel"])
def test_sampling_methods_match_the_jax_function(name, pair):
    """Same key: the same map as the jnp function's within float tolerance (1e-6 relative:
    NumPy and XLA sum the patch in different orders, so the scores can differ in the last
    bit, and differences of scores, as occlusion takes, lose more: 1e-5 of the map's range);
    noise_tunnel around occlusion included."""
    bb, jc = pair
    config = SMALL.get(name, dict(base="occlusion", base_config=SMALL["occlusion"], n_samples=2))
    method = methods.make(name, **config)
    got, want = method(bb, X, key=5), method(jc, X, key=5)
    np.testing.assert_allclose(got.map, want.map, rtol=1e-6, atol=1e-5 * np.abs(want.map).max())
    assert got.forward_images == want.forward_images and in_patch(got.map)


def test_metrics_on_a_black_box(pair):
    """Insertion/deletion curves and the ReX-extraction area (sufficiency) of the true map
    (the patch) agree with the JAX function's."""
    bb, jc = pair
    saliency = IN_PATCH.astype(np.float32)
    got, want = insertion_deletion(bb, X, saliency, 1), insertion_deletion(jc, X, saliency, 1)
    np.testing.assert_allclose(got.insertion, want.insertion, rtol=1e-6)
    np.testing.assert_allclose(got.deletion, want.deletion, rtol=1e-6)
    area, ex = make_area(bb)(X, saliency, 1, float(bb.full_probs(X)[1]))
    assert ex.sufficient and 0 < area <= IN_PATCH.mean()
    assert area == make_area(jc)(X, saliency, 1, float(jc.full_probs(X)[1]))[0]


@pytest.mark.parametrize("name", sorted(set(methods.names()) - set(BLACK_BOX_METHODS)))
def test_gradient_methods_refuse_a_black_box(name):
    """Every registered method outside BLACK_BOX_METHODS (so a new gradient method cannot
    slip through) refuses with one line naming the method that needs gradients (noise_tunnel:
    its default base, integrated gradients) before anything is traced: fn is never called
    after construction."""
    calls = Recorder()
    bb = Classifier.from_callable(calls, (H, W, 3))
    with pytest.raises(ValueError) as err:
        methods.make(name)(bb, X, 1, key=0)
    needs = "integrated_gradients" if name == "noise_tunnel" else name
    message = str(err.value)
    assert message.startswith(f"{needs} needs gradients of the model") and "\n" not in message
    assert "a black box (Classifier.from_callable" in message and "rise" in message
    assert calls.sizes == [1]  # the construction probe only


def test_convad_refuses_a_black_box(pair):
    bb, _ = pair
    with pytest.raises(ValueError, match=r"^mask_mode='ad' needs the model's layers.*black box"):
        rexjax.explain(bb, X, key=0, mask_mode="ad")
    with pytest.raises(ValueError, match=r"^mask_mode='ad'"):
        methods.make("rise", mask_mode="ad", **SMALL["rise"])(bb, X, key=0)


def test_whole_batches_under_jit_vmap_and_batch_size():
    """fn gets whole batches: under vmap the mapped axis is folded into the batch (one call of
    V x B rows, in row-major order), with batch_size it gets ceil(n / b) calls of at most b
    rows; the scores equal the NumPy function's on the same rows, bit for bit, in every case.
    Catches a `sequential` vmap (V calls of B rows), rows reordered when folding, a lost
    remainder chunk."""
    xs = jnp.asarray(np.random.default_rng(0).random((3, 5, H, W, 3)), jnp.float32)
    want = patch_scores_np(np.asarray(xs).reshape(15, H, W, 3)).reshape(3, 5, 2)
    calls = Recorder()
    bb = Classifier.from_callable(calls, (H, W, 3))
    got = jax.jit(jax.vmap(bb.logits))(xs)
    np.testing.assert_array_equal(got, want)
    assert calls.sizes == [1, 15]
    chunked = Recorder()
    bb4 = Classifier.from_callable(chunked, (H, W, 3), batch_size=4)
    np.testing.assert_array_equal(jax.jit(bb4.logits)(xs[0]), want[0])
    np.testing.assert_array_equal(jax.jit(jax.vmap(bb4.logits))(xs), want)
    assert chunked.sizes == [1, 4, 1, 4, 4, 4, 3]


def test_num_classes_dtype_and_names():
    ints = Classifier.from_callable(lambda x: np.ones((x.shape[0], 7), np.int64), (4, 4, 1), name="ints")
    assert ints.num_classes == 7 and ints.name == "ints" and ints.model.channels == 1
    assert ints.logits(jnp.zeros((2, 4, 4, 1))).dtype == jnp.float32
    calls = Recorder()
    given = Classifier.from_callable(calls, (H, W, 3), num_classes=2, labels=("off", "on"))
    assert calls.sizes == [] and given.label(1) == "on"  # num_classes given: no probe call
    # a rank other than 3 (a signal [N, C]) is accepted by the wrapper
    assert BlackBox(lambda x: x.sum(1), (10, 3)).num_classes == 3


@pytest.mark.parametrize("fn, match", [
    (lambda x: np.zeros((2, 3)), r"fn \(<lambda>\) returned shape \[2, 3\] for x\[1, 16, 16, 3\]; expected \[1, K\]"),
    (lambda x: np.zeros(x.shape[0]), r"returned shape \[1\] .*expected \[1, K\]"),
    (lambda x: np.array([["a", "b"]]), r"must return real numbers, got dtype <U1"),
    (lambda x: np.array([[np.nan, 1.0]]), r"non-finite"),
    (lambda x: np.array([[1e39, 1.0]]), r"non-finite"),
    (lambda x: [[1.0], [2.0, 3.0]], r"must return an array \[1, K\]"),
    (lambda x: 1 / 0, r"failed on one zero input x\[1, 16, 16, 3\]: ZeroDivisionError"),
])
def test_broken_fn_is_one_valueerror_at_construction(fn, match):
    with pytest.raises(ValueError, match=match) as err:
        Classifier.from_callable(fn, (H, W, 3))
    assert "\n" not in str(err.value)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="input_shape"):
        Classifier.from_callable(patch_scores_np, (H, 0, 3))
    with pytest.raises(ValueError, match="fn must be a callable"):
        Classifier.from_callable("model.onnx", (H, W, 3))
    with pytest.raises(ValueError, match="batch_size"):
        Classifier.from_callable(patch_scores_np, (H, W, 3), batch_size=0)
    with pytest.raises(ValueError, match="outside \\[0, 1\\] for x\\[1, 16, 16, 3\\] with outputs='probs'"):
        Classifier.from_callable(lambda x: patch_scores_np(x) - 1, (H, W, 3), outputs="probs")
    with pytest.raises(ValueError, match=r"labels: 3 names for 2 classes"):
        Classifier.from_callable(patch_scores_np, (H, W, 3), labels=("a", "b", "c"))
    with pytest.raises(ValueError, match=r"fn takes x\[B, 16, 16, 3\], got shape \(1, 8, 8, 3\)"):
        Classifier.from_callable(patch_scores_np, (H, W, 3)).full_probs(X[:8, :8])
    with pytest.raises(ValueError, match="one output column.*binary_threshold"):
        Classifier.from_callable(lambda x: patch_scores_np(x)[:, 1:], (H, W, 3))


def test_a_fault_at_run_time_carries_the_line():
    """A fn that breaks only on batches > 1 passes the probe; inside a compiled method JAX
    re-raises the callback's error as its own, with our line in the message."""
    bb = Classifier.from_callable(lambda x: patch_scores_np(x[:1]), (H, W, 3))
    with pytest.raises(Exception, match=r"fn \(<lambda>\) returned shape \[1, 2\] for x\[8, 16, 16, 3\]; "
                                        r"expected \[8, 2\]"):
        methods.make("rise", **SMALL["rise"])(bb, X, key=0)


@pytest.mark.slow
def test_rex_on_a_signal_black_box():
    """input_shape of another rank: a 1-D signal [32, 1] whose class 1 is the mean of samples
    10..15; ReX's explanation lies in those samples (the engine's own rank support)."""

    def signal_scores(x):
        m = x[:, 10:16, 0].mean(1)
        return np.stack([np.zeros_like(m), 8 * (m - 0.5)], -1)

    x = np.full((32, 1), 0.2, np.float32)
    x[10:16] = 1.0
    ex = rexjax.explain(Classifier.from_callable(signal_scores, (32, 1)), x, key=0, iters=2)
    assert ex.target == 1 and ex.sufficient and ex.mask.shape == (32,)
    assert ex.mask.any() and not ex.mask[:10].any() and not ex.mask[16:].any()
