"""Logit parity with a torch EfficientNet-Lite (skipped without torch).

The reference below is a minimal re-statement of the `efficientnet-lite-pytorch` port
(lukemelas key names, `Conv2dStaticSamePadding`: TF 'SAME' zero padding, BN eps 1e-3,
ReLU6, no SE, fixed stem/head), fed the wheel's .pth through `torch.load`.
"""

import math

import jax
import numpy as np
import pytest

import rexjax.models as M
from rexjax.models.efficientnet_lite import VARIANTS, block_configs

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class SameConv(nn.Conv2d):
    def forward(self, x):
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3)


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        mid = cfg.cin * cfg.expand
        self.cfg = cfg
        if cfg.expand != 1:
            self._expand_conv = SameConv(cfg.cin, mid, 1, bias=False)
            self._bn0 = bn(mid)
        self._depthwise_conv = SameConv(mid, mid, cfg.kernel, cfg.stride, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv = SameConv(mid, cfg.cout, 1, bias=False)
        self._bn2 = bn(cfg.cout)

    def forward(self, x):
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.cfg.expand != 1 else x
        h = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(h)))))
        return h + x if self.cfg.stride == 1 and self.cfg.cin == self.cfg.cout else h


class TorchLite(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = bn(32)
        cfgs = block_configs(width, depth)
        self._blocks = nn.ModuleList([Block(c) for c in cfgs])
        self._conv_head = SameConv(cfgs[-1].cout, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


@pytest.mark.parametrize(
    "name", ["efficientnet_lite0", pytest.param("efficientnet_lite1", marks=pytest.mark.slow),
             pytest.param("efficientnet_lite2", marks=pytest.mark.slow)]
)
def test_logits_match_torch(name, top1):
    expected, _ = top1
    model = M.load(name)
    width, depth, _ = VARIANTS[name]
    ref = TorchLite(width, depth).eval()
    ref.load_state_dict(torch.load(model.weights_path, map_location="cpu"), strict=True)
    from pathlib import Path

    images = Path(__file__).resolve().parents[2] / "third_party" / "images"
    x = np.stack([model.preprocess(images / n) for n in expected])
    torch.set_num_threads(2)
    with torch.no_grad():
        want = ref(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    with jax.default_matmul_precision("highest"):
        got = np.asarray(jax.jit(model.apply_fn)(model.variables, x))
    assert np.abs(got - want).max() <= 1e-4
    assert list(want.argmax(-1)) == list(expected.values())
