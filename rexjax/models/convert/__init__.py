"""torch state_dict -> Flax converters: a pure-python .pth reader and key/shape checks.

    sd = load_state_dict("resnet50.pth")                    # {key: np.ndarray}, no torch
    variables = convert_state_dict(sd, template, key_fn)   # every key and shape checked
"""

from rexjax.models.convert.checks import CheckpointMismatchError, convert_state_dict
from rexjax.models.convert.pth import UnsafePickleError, load_state_dict

__all__ = ["CheckpointMismatchError", "UnsafePickleError", "convert_state_dict", "load_state_dict"]
