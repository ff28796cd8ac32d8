"""`describe_config(config)`: a ConfigDict as `--help` text, one line per level."""

from __future__ import annotations


def describe_config(config, prefix: str = "") -> str:
    """Scalar fields `a=1 b=x` on one line, then one line per sub-config (`search: iters=6 ...`),
    nested names dotted (`spotlight.budget=40`)."""
    values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    top = " ".join(f"{k}={v}" for k, v in values.items() if not isinstance(v, dict))
    lines = [f"{prefix}{top}".rstrip()] if top else []
    for k, v in values.items():
        if isinstance(v, dict):
            lines.append(describe_config(v, f"{prefix}{k}.") if any(isinstance(x, dict) for x in v.values())
                         else f"{prefix}{k}: " + " ".join(f"{a}={b}" for a, b in v.items()))
    return "\n".join(lines)
