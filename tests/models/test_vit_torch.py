"""Full-size ViT parity with the torch originals (slow; skipped without torch+torchvision+timm):
a randomly initialised torchvision/timm ViT (the zero-initialised head and class token
randomised too) is saved as a .pth, loaded through `rexjax.models.load(name, weights=PATH)`,
and its logits compared at 224 px, and for the timm models also at 224 x 336 (dynamic image
size: position embeddings resampled)."""

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

import rexjax.models as M  # noqa: E402

pytestmark = pytest.mark.slow


def _torch_model(name):
    if name.startswith("vit_b") or name.startswith("vit_l_"):
        m = getattr(torchvision.models, name)(weights=None)
        head, cls = m.heads.head, m.class_token
    else:
        m = timm.create_model(name, pretrained=False, num_classes=1000, dynamic_img_size=True)
        head, cls = m.head, m.cls_token
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        head.weight.copy_(0.05 * torch.randn(head.weight.shape, generator=gen))
        head.bias.copy_(0.05 * torch.randn(head.bias.shape, generator=gen))
        cls.copy_(0.05 * torch.randn(cls.shape, generator=gen))
    return m.eval()


@pytest.mark.parametrize(
    "name,fmt",
    [("vit_b_16", "zip"), ("vit_b_32", "legacy"), ("vit_l_16", "zip"), ("vit_large_patch16_224", "zip"),
     ("vit_huge_patch14_224", "zip")],
)
def test_full_size_random_vit_matches_torch(name, fmt, tmp_path):
    torch.manual_seed(0)
    tm = _torch_model(name)
    sizes = [(224, 224)] + ([(224, 336)] if name.startswith("vit_large_") or name.startswith("vit_huge") else [])
    gen = torch.Generator().manual_seed(2)
    xs = [torch.randn((1, 3, *hw), generator=gen) for hw in sizes]
    with torch.no_grad():
        refs = [tm(x).numpy() for x in xs]
    path = tmp_path / f"{name}.pth"
    torch.save(tm.state_dict(), path, _use_new_zipfile_serialization=(fmt == "zip"))
    del tm
    model = M.load(name, weights=path, use_cache=False)
    assert model.has_weights
    for hw, x, ref in zip(sizes, xs, refs):
        with jax.default_matmul_precision("highest"):
            got = np.asarray(jax.jit(model.apply_fn)(model.variables, x.numpy().transpose(0, 2, 3, 1)))
        diff = float(np.abs(got - ref).max())
        print(f"{name} {hw}: max |logit diff| {diff:.3g}, max |logit| {np.abs(ref).max():.3g}")
        assert diff <= 1e-4
