"""Default ml_collections configs of the `rexjax` commands, one module per command, each with
`get_config()` (loaded by path through `ml_collections.config_flags`, so they are plain files
inside the installed package). Studies in `experiments/configs/` import and extend them.
"""
