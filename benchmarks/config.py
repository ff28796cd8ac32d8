"""The `--rex` flag of the benchmark command lines: ReX's config as the ml_collections config
of `rexjax.configs.rex` (a preset), so every name on the command line is a RexConfig field:

    --rex.search.iters=4 --rex.extract.prefix_growth=0     fields of the preset
    --rex=rexjax/configs/rex.py:paper                      another preset (then its fields)

How many images per model call and what masked pixels show are not config fields: the
commands that vary them take `--batch_size` / `--mask_mode` apart.
"""

from __future__ import annotations

from pathlib import Path


def presets_file() -> str:
    """The path of `rexjax/configs/rex.py` (what `--rex=PATH:PRESET` loads)."""
    from rexjax.configs import rex

    return str(Path(rex.__file__).resolve())


def define_rex_flag(preset: str = "fast", name: str = "rex", flag_values=None, argv=None, prog=None):
    """Defines `--<name>` (absl; on `flag_values`, default the global FLAGS): the preset's
    config, overridable field by field. ml_collections applies the overrides it finds in
    `argv` (default sys.argv) here, so an override the config refuses (no such field, a value
    of the wrong type) is one line `PROG: --<name>...: problem` on stderr and exit status 2."""
    import re
    import sys

    from absl import flags
    from ml_collections import config_flags

    try:
        return config_flags.DEFINE_config_file(
            name, f"{presets_file()}:{preset}", flag_values=flags.FLAGS if flag_values is None else flag_values,
            sys_argv=argv, help_string=f"ReX's config: a preset of rexjax/configs/rex.py (default {preset!r}; "
            f"--{name}=PATH:paper for the paper's budget), then --{name}.FIELD=VALUE overrides with RexConfig's "
            "field names.")
    except (KeyError, AttributeError) as err:
        text = str(err.args[0] if err.args else err)  # a repr of the field, perhaps with a "Did you mean"
        field = re.sub(r"[\\'\"]", "", text.split("\\n")[0].splitlines()[0])
        hint = re.search(r'Did you mean "([^"]+)"', text)
        why = f"the config has no field {field!r}" + (f" (did you mean {hint.group(1)!r}?)" if hint else "")
    except (TypeError, ValueError) as err:
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
    print(f"{prog or Path(sys.argv[0]).name}: --{name}: {why}", file=sys.stderr)
    raise SystemExit(2)
