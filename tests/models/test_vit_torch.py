"""Full-size ViT parity with the torch originals (slow; skipped without torch+torchvision+timm):
a randomly initialised torchvision/timm ViT (the zero-initialised head and class token
randomised too) is saved as a .pth, loaded through `rexjax.models.load(name, weights=PATH)`,
and its logits compared at 224 px, and for the timm models also at 224 x 336 (dynamic image
size: position embeddings resampled)."""

import pytest

from tests.helpers.torch_parity import assert_loaded_model_matches, torch_logits

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
timm = pytest.importorskip("timm")

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
    xs, refs = torch_logits(tm, sizes)
    path = tmp_path / f"{name}.pth"
    torch.save(tm.state_dict(), path, _use_new_zipfile_serialization=(fmt == "zip"))
    del tm
    assert_loaded_model_matches(name, path, xs, refs)
