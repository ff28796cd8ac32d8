"""Writes the torch parity fixtures for the zoo's torchvision/timm ports (run once; output committed).

Needs torch + torchvision + timm (not rexjax's runtime deps):

    python tools/make_parity_fixtures.py [--out tests/fixtures/zoo]

For each family in `FAMILIES` (or those named by --families) it builds a *small* randomly
initialised torchvision/timm model with the same module tree (and so the same state_dict
key layout) as the full-size one, perturbs every BatchNorm's affine parameters and running
statistics (so eval-mode BN is really exercised; builders randomise the other affine
parameters that init to constants: LayerNorm, GRN, layer scale), and saves
  * `<family>_zip.pth`     state_dict, `torch.save` zip format (torch >= 1.6 default),
  * `<family>_legacy.pth`  the same state_dict with `_use_new_zipfile_serialization=False`,
  * `<family>.npz`         `x` (NCHW input), `logits`, `feature` (the Grad-CAM layer's
                           activation, transposed to NHWC) and `torch_version`; float32, or
                           float64 for the FLOAT64 families (float64 forward of the float32 weights).
The Flax side of each tiny configuration lives in tests/models/test_zoo_parity.py
(`TINY`); the test checks the key sets match exactly, so the two cannot drift silently.
"""

from __future__ import annotations

import argparse
import os
from functools import partial

import numpy as np
import torch
from torch import nn

SEED = 0
INPUT_SHAPE = (2, 3, 63, 72)  # odd, non-square: exercises stride-2 floor and asymmetric maps
# Inception's stem needs >= 75 px; 107 x 150 leaves a 2 x 3 Grad-CAM grid (8 x 8 at 299)
INPUT_SHAPES = {"inception_v3": (2, 3, 107, 150), "inception_v4": (2, 3, 107, 150), "inception_resnet_v2": (2, 3, 107, 150)}
WIDTH_DIV = 16  # Inception widths are hard-coded in torchvision/timm; all are multiples of 32


def scaled(conv_cls):
    """A conv-block class whose channel counts are divided by WIDTH_DIV (3 input channels kept),
    so that the whole net shrinks consistently (pass-through max-pool branches included)."""

    def make(in_channels, out_channels, *args, **kwargs):
        s = lambda c: c if c == 3 else c // WIDTH_DIV  # noqa: E731
        return conv_cls(s(in_channels), s(out_channels), *args, **kwargs)

    return make

NUM_CLASSES = 10
CALIBRATE = {"inception_v3", "inception_v4", "inception_resnet_v2"}  # BN stats from a batch (calibrate_bn)
# References computed in float64 from the float32 weights (the test runs the port in float64):
# ~60 calibrated conv-BN-ReLU layers amplify float32 rounding to ~6e-5 of torch's own logits,
# so a float32 comparison at 1e-4 would measure rounding, not the port.
FLOAT64 = CALIBRATE


def calibrate_bn(model: nn.Module, x: torch.Tensor) -> None:
    """Running statistics := the batch statistics of `x` (affine parameters kept). Deep
    narrow nets (Inception at 1/16 width) with random running statistics lose the input
    signal after ~20 conv-BN-ReLU layers (logits independent of the input)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch -> its statistics
        m.train()
    with torch.no_grad():
        model(x)
    model.eval()


def randomise(params, gen: torch.Generator, scale: float = 0.2, offset: float = 0.0) -> None:
    """Overwrites each tensor with `offset + scale * N(0, 1)` (LayerNorm/GRN/layer-scale
    parameters that torch initialises to constants)."""
    with torch.no_grad():
        for p in params:
            p.copy_(offset + scale * torch.randn(p.shape, generator=gen))


def lecun_init(model: nn.Module) -> None:
    """N(0, 1/fan_in) weights for every Conv2d/Linear: the ConvNeXt inits (std 0.02) keep
    pre-GELU values ~0.05, where exact and tanh-approximate GELU agree to 1e-6."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            nn.init.normal_(m.weight, 0, fan_in**-0.5)
            nn.init.normal_(m.bias, 0, 0.1)


def randomise_layernorms(model: nn.Module, gen: torch.Generator) -> None:
    """Random LayerNorm affine parameters (timm's LayerNorm2d is an nn.LayerNorm)."""
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            randomise([m.weight], gen, 0.2, 1.0)
            randomise([m.bias], gen)


def perturb_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Random BN affine params and running stats (var in [0.5, 2])."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.2 * torch.randn(n, generator=gen))
                m.bias.copy_(0.2 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))


def tiny_resnet() -> tuple[nn.Module, nn.Module]:
    """torchvision ResNet with a Bottleneck of expansion 1 (stage widths 64..512, bottleneck
    widths 16..128 via width_per_group=16), depths (2,1,1,1); returns (model, Grad-CAM layer)."""
    from torchvision.models.resnet import Bottleneck, ResNet

    class TinyBottleneck(Bottleneck):
        expansion = 1

    m = ResNet(TinyBottleneck, [2, 1, 1, 1], num_classes=NUM_CLASSES, width_per_group=16)
    return m, m.layer4


def tiny_vgg() -> tuple[nn.Module, nn.Module]:
    """torchvision VGG over `make_layers` with VGG-16's layout at 1/16 width; the classifier
    (hard-wired to 512*7*7 -> 4096 in torchvision) is replaced by the same 7-module Sequential
    at width 32, so the keys are features.{0..28}, classifier.{0,3,6} as in vgg16."""
    from torchvision.models.vgg import VGG, make_layers

    cfg = [8, 8, "M", 16, 16, "M", 16, 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M"]
    m = VGG(make_layers(cfg, batch_norm=False), num_classes=NUM_CLASSES)
    hidden = 32
    m.classifier = nn.Sequential(
        nn.Linear(32 * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(),
        nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(),
        nn.Linear(hidden, NUM_CLASSES),
    )
    for lin in (m.classifier[0], m.classifier[3], m.classifier[6]):
        nn.init.normal_(lin.weight, 0, 0.1)
        nn.init.normal_(lin.bias, 0, 0.1)
    return m, m.features[29]  # ReLU after the last conv (as vgg16's features.29)


def tiny_regnety() -> tuple[nn.Module, nn.Module]:
    """timm RegNet(RegNetCfg) with SE and group size 8: 4 stages, grouped (non-depthwise) 3x3."""
    from timm.models.regnet import RegNet, RegNetCfg

    cfg = RegNetCfg(depth=6, w0=16, wa=10.0, wm=1.5, group_size=8, se_ratio=0.25, stem_width=8)
    m = RegNet(cfg, num_classes=NUM_CLASSES)
    nn.init.normal_(m.head.fc.weight, 0, 0.3)  # timm's std 0.01 would give logits ~0.1
    return m, m.s4


def tiny_efficientnet_v2() -> tuple[nn.Module, nn.Module]:
    """torchvision EfficientNet with V2 blocks (Fused-MBConv e=1 and e=4, MBConv + SE) at
    small widths, BN eps 1e-3 as efficientnet_v2_s."""
    from torchvision.models.efficientnet import EfficientNet, FusedMBConvConfig, MBConvConfig

    setting = [
        FusedMBConvConfig(1, 3, 1, 8, 8, 2),
        FusedMBConvConfig(4, 3, 2, 8, 16, 2),
        MBConvConfig(4, 3, 2, 16, 24, 2),
        MBConvConfig(6, 3, 1, 24, 32, 2),
    ]
    m = EfficientNet(
        setting,
        dropout=0.2,
        stochastic_depth_prob=0.2,
        num_classes=NUM_CLASSES,
        norm_layer=partial(nn.BatchNorm2d, eps=1e-3),
        last_channel=64,
    )
    return m, m.features[-1]


def tiny_convnext() -> tuple[nn.Module, nn.Module]:
    """torchvision ConvNeXt, 4 stages of widths 8..32 and depths (1,1,2,1), random
    LayerNorms and layer scales (init 1e-6 would hide the blocks)."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    setting = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, 24, 1), CNBlockConfig(24, 32, 2), CNBlockConfig(32, None, 1)]
    m = ConvNeXt(setting, num_classes=NUM_CLASSES)
    lecun_init(m)
    gen = torch.Generator().manual_seed(SEED + 2)
    randomise_layernorms(m, gen)
    randomise([p for k, p in m.named_parameters() if k.endswith("layer_scale")], gen, 0.5)
    nn.init.normal_(m.classifier[2].weight, 0, 0.3)
    return m, m.features[-1]


def tiny_convnextv2() -> tuple[nn.Module, nn.Module]:
    """timm ConvNeXt-V2 (GRN, no layer scale), widths 8..32, depths (1,1,2,1); random
    LayerNorms and GRN weight/bias (init 0 would make GRN the identity)."""
    from timm.models.convnext import ConvNeXt

    m = ConvNeXt(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), use_grn=True, ls_init_value=None, num_classes=NUM_CLASSES)
    lecun_init(m)
    gen = torch.Generator().manual_seed(SEED + 2)
    randomise_layernorms(m, gen)
    randomise([p for k, p in m.named_parameters() if ".grn." in k], gen, 0.5)
    nn.init.normal_(m.head.fc.weight, 0, 0.3)
    return m, m.stages[-1]


def tiny_resnet_d() -> tuple[nn.Module, nn.Module]:
    """timm ResNet-D (deep stem 8-8-16, average-pool shortcut), Bottleneck (expansion 4),
    channels (8,16,16,16), depths (2,1,1,1): resnet152d's key layout."""
    from timm.models.resnet import Bottleneck, ResNet

    m = ResNet(Bottleneck, [2, 1, 1, 1], channels=(8, 16, 16, 16), stem_width=8, stem_type="deep", avg_down=True,
               num_classes=NUM_CLASSES)
    nn.init.normal_(m.fc.weight, 0, 0.3)
    return m, m.layer4


def tiny_inception_v3() -> tuple[nn.Module, nn.Module]:
    """torchvision Inception3 at 1/16 width (every block's conv_block scaled), with
    transform_input and the auxiliary head (its keys must be dropped by the converter)."""
    from torchvision.models import inception as tv

    conv = scaled(tv.BasicConv2d)
    blocks = [conv] + [partial(b, conv_block=conv) for b in (tv.InceptionA, tv.InceptionB, tv.InceptionC, tv.InceptionD, tv.InceptionE, tv.InceptionAux)]
    m = tv.Inception3(num_classes=NUM_CLASSES, aux_logits=True, transform_input=True, inception_blocks=blocks, init_weights=True)
    m.fc = nn.Linear(2048 // WIDTH_DIV, NUM_CLASSES)
    nn.init.normal_(m.fc.weight, 0, 0.3)
    return m, m.Mixed_7c


class _ScaledNN:
    """`torch.nn` with Conv2d widths divided by WIDTH_DIV (for timm modules that build their
    residual 1x1 convs with a hard-coded `nn.Conv2d(128, 320, ...)`)."""

    Conv2d = staticmethod(scaled(nn.Conv2d))

    def __getattr__(self, name):
        return getattr(nn, name)


def tiny_timm_inception(module_name: str, cls_name: str, head: str) -> nn.Module:
    """timm InceptionV4 / InceptionResnetV2 at 1/16 width: the module's `ConvNormAct` (and
    `nn.Conv2d`) are swapped for scaled versions while the model is built."""
    import importlib

    mod = importlib.import_module(f"timm.models.{module_name}")
    saved = mod.ConvNormAct, mod.nn
    mod.ConvNormAct, mod.nn = scaled(saved[0]), _ScaledNN()
    try:
        m = getattr(mod, cls_name)(num_classes=NUM_CLASSES)
    finally:
        mod.ConvNormAct, mod.nn = saved
    fc = nn.Linear(1536 // WIDTH_DIV, NUM_CLASSES)
    nn.init.normal_(fc.weight, 0, 0.3)
    setattr(m, head, fc)
    return m


def tiny_inception_v4() -> tuple[nn.Module, nn.Module]:
    m = tiny_timm_inception("inception_v4", "InceptionV4", "last_linear")
    return m, m.features[-1]


def tiny_inception_resnet_v2() -> tuple[nn.Module, nn.Module]:
    m = tiny_timm_inception("inception_resnet_v2", "InceptionResnetV2", "classif")
    return m, m.conv2d_7b


FAMILIES = {
    "resnet": tiny_resnet,
    "vgg": tiny_vgg,
    "regnety": tiny_regnety,
    "efficientnet_v2": tiny_efficientnet_v2,
    "convnext": tiny_convnext,
    "convnextv2": tiny_convnextv2,
    "resnet_d": tiny_resnet_d,
    "inception_v3": tiny_inception_v3,
    "inception_v4": tiny_inception_v4,
    "inception_resnet_v2": tiny_inception_resnet_v2,
}


# ---- ViT (rexjax.models.vit; tests/models/test_vit_parity.py holds the Flax twins) ----


def _grid_tap(block: nn.Module, grid: tuple[int, int]) -> nn.Module:
    """A module (not part of the model, so no state_dict keys) that receives the patch tokens
    of `block`'s output as an NCHW grid [B, D, gh, gw] (class token dropped): the ViT
    Grad-CAM layer in the NCHW form `run_with_feature` expects."""

    class GridTap(nn.Module):
        def forward(self, tokens):
            b, _, d = tokens.shape
            return tokens[:, 1:].reshape(b, *grid, d).permute(0, 3, 1, 2)

    tap = GridTap()

    def hook(_m, _i, out) -> None:  # returns None: the block's output is left as it is
        tap(out)

    block.register_forward_hook(hook)
    return tap


def tiny_vit_torchvision() -> tuple[nn.Module, nn.Module]:
    """torchvision VisionTransformer, patch 7 on a 35 px (odd; torchvision accepts only its
    own square size) input: 5 x 5 tokens + class token, width 16, 2 heads, 2 blocks; every
    parameter random (torchvision zero-initialises the head and class token)."""
    from torchvision.models.vision_transformer import VisionTransformer

    m = VisionTransformer(image_size=35, patch_size=7, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=NUM_CLASSES)
    gen = torch.Generator().manual_seed(SEED + 2)
    randomise(m.parameters(), gen, 0.3)
    randomise_layernorms(m, gen)
    return m, _grid_tap(m.encoder.layers[-1], (5, 5))


def tiny_vit_timm() -> tuple[nn.Module, nn.Module]:
    """timm VisionTransformer, patch 7, learned 4 x 4 grid (28 px), run with
    dynamic_img_size on a 35 x 49 input (odd, non-square; timm asserts whole patches):
    5 x 7 tokens, position embeddings resampled bicubically; width 16, 2 heads, 2 blocks,
    every parameter random."""
    from timm.models.vision_transformer import VisionTransformer

    m = VisionTransformer(img_size=28, patch_size=7, embed_dim=16, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=NUM_CLASSES, dynamic_img_size=True)
    gen = torch.Generator().manual_seed(SEED + 2)
    randomise(m.parameters(), gen, 0.3)
    randomise_layernorms(m, gen)
    return m, _grid_tap(m.blocks[-1], (5, 7))


FAMILIES.update({"vit_torchvision": tiny_vit_torchvision, "vit_timm": tiny_vit_timm})
INPUT_SHAPES.update({"vit_torchvision": (2, 3, 35, 35), "vit_timm": (2, 3, 35, 49)})


# ---- EVA-02 (rexjax.models.eva; tests/models/test_eva_parity.py holds the Flax twin) ----


def tiny_eva02() -> tuple[nn.Module, nn.Module]:
    """timm Eva with eva02_large_patch14_448's options (separate q/k/v, k without bias,
    RotaryEmbeddingCat with ref_feat_shape, SwiGLU with sub-LN, average pool + fc_norm) at
    patch 7, learned 4 x 4 grid (28 px), ref_feat_shape 3 x 3, width 32, 2 heads (head dim 16:
    4 rotary bands per axis), 2 blocks, SwiGLU hidden int(32 * 8/3) = 85; run with
    dynamic_img_size on a 35 x 49 input (5 x 7 grid: position embeddings resampled, rotary
    positions scaled by 3/5 and 3/7); every parameter random."""
    from timm.models.eva import Eva

    m = Eva(img_size=28, patch_size=7, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4 * 2 / 3, qkv_fused=False,
            swiglu_mlp=True, scale_mlp=True, use_rot_pos_emb=True, ref_feat_shape=(3, 3), num_classes=NUM_CLASSES,
            dynamic_img_size=True)
    gen = torch.Generator().manual_seed(SEED + 2)
    randomise(m.parameters(), gen, 0.3)
    randomise_layernorms(m, gen)
    return m, _grid_tap(m.blocks[-1], (5, 7))


FAMILIES["eva02"] = tiny_eva02
INPUT_SHAPES["eva02"] = (2, 3, 35, 49)


def run_with_feature(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    got = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: got.__setitem__("f", out.detach().clone()))
    with torch.no_grad():
        logits = model(x)
    handle.remove()
    return logits.numpy(), got["f"].permute(0, 2, 3, 1).contiguous().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("tests", "fixtures", "zoo"))
    parser.add_argument("--families", default="", help="comma-separated subset of FAMILIES (default: all)")
    args = parser.parse_args()
    chosen = [f for f in args.families.split(",") if f] or list(FAMILIES)
    unknown = sorted(set(chosen) - set(FAMILIES))
    if unknown:
        parser.error(f"--families: unknown {unknown}; known: {sorted(FAMILIES)}")
    os.makedirs(args.out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for family in chosen:
        build = FAMILIES[family]
        torch.manual_seed(SEED)
        gen = torch.Generator().manual_seed(SEED + 1)
        model, layer = build()
        perturb_bn(model, gen)
        model.eval()
        x = torch.randn(INPUT_SHAPES.get(family, INPUT_SHAPE), generator=gen)
        if family in CALIBRATE:
            calibrate_bn(model, torch.randn((8, *x.shape[1:]), generator=gen))
        sd = {k: v.clone() for k, v in model.state_dict().items()}
        if family in FLOAT64:  # float32 weights, float64 reference (see FLOAT64)
            model, x = model.double(), x.double()
        logits, feature = run_with_feature(model, layer, x)
        torch.save(sd, os.path.join(args.out, f"{family}_zip.pth"))
        torch.save(sd, os.path.join(args.out, f"{family}_legacy.pth"), _use_new_zipfile_serialization=False)
        np.savez_compressed(
            os.path.join(args.out, f"{family}.npz"),
            x=x.numpy(),
            logits=logits,
            feature=feature,
            torch_version=np.array(torch.__version__),
        )
        n = sum(p.numel() for p in model.parameters())
        print(f"{family}: {n} params, {len(sd)} keys, logits {logits.shape}, feature {feature.shape}")
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"total fixture size {total / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
