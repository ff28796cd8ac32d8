"""Benchmarks of rexjax: what `make bench` and `make bench-compare` run, and the sweeps behind
the default budget. Not part of the installed package; run from the repository root as
`python -m benchmarks.<module>` (each module's docstring shows its command line).

    throughput    `make bench`: ReX's images/s against the bare model's, per image
    compare       `make bench-compare`: rexjax against the ReX tool (rex-xai, torch), scored by
                  one metric code; runs, stats, tool_env, tool_worker are its parts
    frontier      the quality-cost frontier: median area and insertion against forward images
    screen        rexjax points per (image, seed) against the tool's rows of a compare run
    lockstep      images/hour one by one against `Explainer.explain_many`
    convad_cost   ConvAD's forward cost against the plain forward pass
    timing        the timers they share
    config        the `--rex` config flag they share (RexConfig's field names)
    docs          `make docs`: docs/benchmarks.md and the results READMEs, from the results files

Results: `benchmarks/results/<benchmark>/<YYYY-MM-DD>-<setting>/`, one folder per run, with a
provenance.json (commit, command, versions).
"""
