"""Reports of study runs: `rexjax.report.html.write_report` (a self-contained report.html)
and `rexjax.report.plots` (box / violin / line plots as PNG files)."""
