"""Flax variable path -> torch state_dict key, for zoo ports whose Flax module names mirror
the torch module tree with '_' in place of '.' (torchvision ResNet/VGG/EfficientNet-V2,
timm RegNet: none of their parameter-bearing module names contains '_').

    ('params', 'layer2_0', 'downsample_1', 'scale')         -> 'layer2.0.downsample.1.weight'
    ('batch_stats', 's3', 'b4', 'conv2', 'bn', 'var')      -> 's3.b4.conv2.bn.running_var'
    ('params', 'features_4_0', 'block_2', 'fc1', 'kernel') -> 'features.4.0.block.2.fc1.weight'

Layouts (OIHW -> HWIO, (out,in) -> (in,out)) and every key/shape check are done by
`rexjax.models.convert.checks.convert_state_dict`.
"""

from __future__ import annotations

LEAF_NAMES = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def dotted_key(path: tuple[str, ...]) -> str:
    """`(collection, *modules, leaf)` -> torch key (see module docstring)."""
    if len(path) < 3 or path[-1] not in LEAF_NAMES:
        raise ValueError(f"not a zoo variable path: {path!r}")
    mods = [part for m in path[1:-1] for part in m.split("_")]
    return ".".join(mods + [LEAF_NAMES[path[-1]]])
