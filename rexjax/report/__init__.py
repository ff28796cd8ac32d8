"""Reports of study runs: `rexjax.report.html.write_report` (a self-contained report.html),
`rexjax.report.plots` (box / violin / line plots as PNG files) and `rexjax.report.maps`
(each row's map, explanation and mask PNGs). The studies call into the report; the report
imports no study."""
