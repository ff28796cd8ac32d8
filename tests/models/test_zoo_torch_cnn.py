"""Full-size parity of the issue-14 CNN ports with torchvision 0.29 / timm 1.0.31 (slow;
skipped without torch+torchvision+timm): a randomly initialised torch model (BN statistics
calibrated and perturbed as in test_zoo_torch.py; LayerNorm/GRN/layer-scale parameters, which
torch initialises to constants, randomised) saved as a .pth and loaded through
`rexjax.models.load(name, weights=PATH)` (float32, logits <= 1e-4), and the same port in
float64 against torch float64 (relative error <= 1e-9: the port itself, free of rounding)."""

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

import rexjax.models as M  # noqa: E402
from tests.models.test_zoo_torch import calibrate_and_perturb_bn, float64_logits  # noqa: E402

pytestmark = pytest.mark.slow

TIMM = {"convnextv2_large", "convnextv2_huge", "resnet152d", "inception_v4", "inception_resnet_v2"}
RESIDUAL_BN = {"resnet152": r"\.bn3$", "resnet152d": r"\.bn3$"}


def _torch_model(name):
    if name in TIMM:
        return timm.create_model(name, pretrained=False)
    if name == "inception_v3":  # as torchvision builds it for its ImageNet weights
        return torchvision.models.inception_v3(weights=None, aux_logits=True, transform_input=True, init_weights=False)
    return getattr(torchvision.models, name)(weights=None)


def randomise_constants(model, gen) -> None:
    """LayerNorm affine 1 + 0.1 N / 0.1 N, ConvNeXt layer scale 0.1 |N| (init 1e-6 would switch
    the blocks off), GRN weight/bias 0.1 N (init 0 makes GRN the identity)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale") or ".grn." in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen).abs() if name.endswith("layer_scale") else 0.1 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


@pytest.mark.parametrize("name", ["convnext_tiny", "convnextv2_large", "resnet152", "resnet152d", "vgg19", "inception_v3", "inception_v4", "inception_resnet_v2"])
def test_full_size_random_model_matches_torch(name, tmp_path):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    tm = _torch_model(name)
    spec = M.get_spec(name)
    randomise_constants(tm, gen)
    calibrate_and_perturb_bn(tm, torch.randn((4, 3, *spec.input_size), generator=gen), gen, RESIDUAL_BN.get(name))
    x = torch.randn((2, 3, *spec.input_size), generator=gen)
    with torch.no_grad():
        ref = tm(x).numpy()
    path = tmp_path / f"{name}.pth"
    torch.save(tm.state_dict(), path)
    del tm
    model = M.load(name, weights=path, use_cache=False)
    with jax.default_matmul_precision("highest"):
        got = np.asarray(jax.jit(model.apply_fn)(model.variables, x.numpy().transpose(0, 2, 3, 1)))
    diff = float(np.abs(got - ref).max())
    print(f"{name}: max |logit diff| {diff:.3g}, max |logit| {np.abs(ref).max():.3g}")
    # Inception v4 / IRv2 have no residual path to damp: their perturbed statistics compound
    # over 60+ conv-BN layers to logits of ~1e3, so the float32 bound is relative there (the
    # float64 test below is the exactness check)
    scale = max(1.0, float(np.abs(ref).max())) if name in ("inception_v4", "inception_resnet_v2") else 1.0
    assert diff <= 1e-4 * scale


@pytest.mark.parametrize("name", ["convnext_tiny", "convnextv2_large", "resnet152d", "inception_v3", "inception_v4", "inception_resnet_v2"])
def test_full_size_random_model_exact_in_float64(name):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2)
    tm = _torch_model(name)
    randomise_constants(tm, gen)
    got, ref = float64_logits(tm, name, gen)
    rel = float(np.abs(got - ref).max() / np.abs(ref).max())
    print(f"{name} float64: max |logit diff| {np.abs(got - ref).max():.3g}, max |logit| {np.abs(ref).max():.3g}")
    assert got.dtype == np.float64 and rel <= 1e-9
