"""Full-size EVA-02 parity with timm (slow; skipped without torch+timm): a randomly initialised
timm `eva02_large_patch14_448` (dynamic image size; head, class token and every LayerNorm
randomised: timm's head init is scaled by 1e-3 and its LayerNorms are the identity) is saved
as a .pth, loaded through `rexjax.models.load(name, weights=PATH)`, and its logits compared
at 448 px and at 224 x 336 (position embeddings resampled, rotary positions rescaled). At
448 the dynamic-size timm model is checked to be bitwise timm's default (fixed-size) model."""

import numpy as np
import pytest

from tests.helpers.torch_parity import assert_loaded_model_matches, torch_logits

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

pytestmark = pytest.mark.slow

NAME = "eva02_large_patch14_448"


def _timm_model():
    m = timm.create_model(NAME, pretrained=False, dynamic_img_size=True)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in (m.head.weight, m.head.bias, m.cls_token):
            p.copy_(0.05 * torch.randn(p.shape, generator=gen))
        for mod in m.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.copy_(1.0 + 0.2 * torch.randn(mod.weight.shape, generator=gen))
                mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=gen))
    return m.eval()


def test_full_size_random_eva02_matches_timm(tmp_path):
    torch.manual_seed(0)
    tm = _timm_model()
    xs, refs = torch_logits(tm, [(448, 448), (224, 336)])
    path = tmp_path / f"{NAME}.pth"
    torch.save(tm.state_dict(), path)
    del tm
    fixed = timm.create_model(NAME, pretrained=False)  # timm's default: 448 only, cached rotary table
    fixed.load_state_dict(torch.load(path))
    with torch.no_grad():
        np.testing.assert_array_equal(fixed.eval()(xs[0]).numpy(), refs[0])  # same model at 448
    del fixed
    assert_loaded_model_matches(NAME, path, xs, refs)
