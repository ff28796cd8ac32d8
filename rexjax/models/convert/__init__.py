"""torch state_dict -> Flax converters: a pure-python .pth reader and key/shape checks."""
