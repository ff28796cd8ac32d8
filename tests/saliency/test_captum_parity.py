"""Parity with Captum on one torch / JAX model pair (slow; skipped without torch + captum)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rexjax.classifier import Classifier
from rexjax.saliency import gradient_shap, integrated_gradients, kernel_shap, noise_tunnel

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

H = W = 12


def model_pair():
    """The same ReLU CNN in torch (NCHW) and JAX (NHWC), from one set of numpy weights."""
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.5, (8, 3, 3, 3)).astype(np.float32)  # OIHW
    b1 = rng.normal(0, 0.1, (8,)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32)
    wd = rng.normal(0, 1.0, (4, 8)).astype(np.float32)  # (out, in)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.fc = torch.nn.Linear(8, 4, bias=False)
            with torch.no_grad():
                self.c1.weight.copy_(torch.from_numpy(w1))
                self.c1.bias.copy_(torch.from_numpy(b1))
                self.c2.weight.copy_(torch.from_numpy(w2))
                self.fc.weight.copy_(torch.from_numpy(wd))

        def forward(self, x):
            h = torch.relu(self.c1(x))
            h = torch.relu(self.c2(h))
            return self.fc(h.mean((2, 3)))

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, jnp.asarray(w.transpose(2, 3, 1, 0)), (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def logits(x):
        h = jax.nn.relu(conv(x, w1) + b1)
        h = jax.nn.relu(conv(h, w2))
        return h.mean((1, 2)) @ wd.T

    return Net().eval(), Classifier(logits)


def to_torch(x):
    return torch.from_numpy(np.asarray(x).transpose(2, 0, 1)[None].copy())


def from_torch(a):
    return a[0].detach().numpy().transpose(1, 2, 0)


X = np.random.default_rng(1).random((H, W, 3)).astype(np.float32)


def test_models_agree():
    net, clf = model_pair()
    ours = clf.logits(jnp.asarray(X)[None])
    np.testing.assert_allclose(net(to_torch(X)).detach().numpy(), ours, rtol=1e-4, atol=1e-5)


def test_integrated_gradients_matches_captum():
    net, clf = model_pair()
    theirs = captum_attr.IntegratedGradients(net).attribute(to_torch(X), target=2, n_steps=64, method="gausslegendre")
    ours = integrated_gradients(n_steps=64)(clf, jnp.asarray(X), 2, key=0).record.attributions
    np.testing.assert_allclose(ours, from_torch(theirs), rtol=1e-3, atol=1e-4)


def test_gradient_shap_matches_captum_in_expectation():
    net, clf = model_pair()
    torch.manual_seed(0)
    theirs = captum_attr.GradientShap(net).attribute(
        to_torch(X), baselines=torch.zeros(1, 3, H, W), target=2, n_samples=4000, stdevs=0.0)
    gs = gradient_shap(n_samples=4000, batch_size=500)
    ours = gs(clf, jnp.asarray(X), 2, key=jax.random.key(0)).record.attributions
    a, b = np.asarray(ours).sum(-1), from_torch(theirs).sum(-1)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98
    assert a.sum() == pytest.approx(b.sum(), rel=0.03)


def test_noise_tunnel_matches_captum_in_expectation():
    net, clf = model_pair()
    torch.manual_seed(0)
    nt = captum_attr.NoiseTunnel(captum_attr.IntegratedGradients(net))
    theirs = nt.attribute(to_torch(X), target=2, nt_type="smoothgrad", nt_samples=200, stdevs=0.05, n_steps=16)
    ours = noise_tunnel(integrated_gradients(n_steps=16), n_samples=200, stdev=0.05, relative=False)(
        jax.random.key(0), clf, jnp.asarray(X), 2)
    b = from_torch(theirs).sum(-1)
    assert np.corrcoef(np.asarray(ours.map).ravel(), b.ravel())[0, 1] > 0.95


def test_kernel_shap_matches_captum():
    pytest.importorskip("sklearn")  # Captum fits its surrogate with scikit-learn
    net, clf = model_pair()
    seg = np.repeat(np.repeat(np.arange(6).reshape(2, 3), 6, 0), 4, 1)
    torch.manual_seed(0)
    theirs = captum_attr.KernelShap(lambda t: torch.softmax(net(t), -1)).attribute(
        to_torch(X), target=2, n_samples=3000, feature_mask=torch.from_numpy(seg)[None, None].expand(1, 3, H, W),
        perturbations_per_eval=100)
    ours = kernel_shap(n_samples=100, mask_mode=0.0)(clf, jnp.asarray(X), 2, key=jax.random.key(0), segments=seg)
    np.testing.assert_allclose(np.asarray(ours.map), from_torch(theirs)[..., 0], atol=0.02)
