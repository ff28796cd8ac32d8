"""The tiny torchvision/timm twins of the parity fixtures (tests/fixtures/zoo/make_parity_fixtures.py)."""

from pathlib import Path

from rexjax.models import convnext as CN
from rexjax.models import efficientnet_v2 as EV2
from rexjax.models import inception as INC
from rexjax.models import regnet as RN
from rexjax.models import resnet as R
from rexjax.models import vgg as V

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoo"

# The Flax twins of the tiny torch models built in tests/fixtures/zoo/make_parity_fixtures.py.
TINY = {
    "resnet": (
        R.ResNet,
        R.ResNetConfig(depths=(2, 1, 1, 1), expansion=1, width_per_group=16, num_classes=10),
        R.convert,
        "layer4",
    ),
    "vgg": (
        V.VGG,
        V.VGGConfig(
            features=(8, 8, "M", 16, 16, "M", 16, 16, 16, "M", 32, 32, 32, "M", 32, 32, 32, "M"),
            hidden=32,
            num_classes=10,
        ),
        V.convert,
        "last_conv",
    ),
    "regnety": (
        RN.RegNet,
        RN.RegNetConfig(*RN.regnet_stages(6, 16, 10.0, 1.5, 8), se_ratio=0.25, stem_width=8, num_classes=10),
        RN.convert,
        "stage4",
    ),
    "efficientnet_v2": (
        EV2.EfficientNetV2,
        EV2.EfficientNetV2Config(
            stages=(
                EV2.StageConfig(True, 1, 3, 1, 8, 8, 2),
                EV2.StageConfig(True, 4, 3, 2, 8, 16, 2),
                EV2.StageConfig(False, 4, 3, 2, 16, 24, 2),
                EV2.StageConfig(False, 6, 3, 1, 24, 32, 2),
            ),
            last_channel=64,
            num_classes=10,
        ),
        EV2.convert,
        "head",
    ),
    "convnext": (
        CN.ConvNeXt,
        CN.ConvNeXtConfig(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), num_classes=10),
        CN.convert,
        "stage4",
    ),
    "convnextv2": (
        CN.ConvNeXt,
        CN.ConvNeXtConfig(depths=(1, 1, 2, 1), dims=(8, 16, 24, 32), layer_scale=False, grn=True, timm=True, num_classes=10),
        CN.convert,
        "stage4",
    ),
    "resnet_d": (
        R.ResNet,
        R.ResNetConfig(depths=(2, 1, 1, 1), planes=(8, 16, 16, 16), stem_width=16, deep_stem_width=8, avg_down=True, num_classes=10),
        R.convert,
        "layer4",
    ),
    "inception_v3": (INC.Inception, INC.InceptionConfig("v3", width_div=16, transform_input=True, num_classes=10), INC.convert, "mixed7"),
    "inception_v4": (INC.Inception, INC.InceptionConfig("v4", width_div=16, num_classes=10), INC.convert, "mixed7"),
    "inception_resnet_v2": (INC.Inception, INC.InceptionConfig("resnet_v2", width_div=16, num_classes=10), INC.convert, "mixed7"),
}
