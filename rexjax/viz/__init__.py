"""Figures (matplotlib's object-oriented API: `Figure` objects written with `savefig`, no
pyplot state and no backend switch, so they work headless whatever backend the process
uses): explanation panels, overlays, contours.

`figure` holds the pieces the image figures share; `explanation` (one explanation) and
`multiple` (several explanations, contrastive) compose them. `signal` (1-D: each channel a
line, the explanation shaded, over the responsibility) and `volume` (3-D: three orthogonal
slices with the explanation outlined, over the responsibility) draw the other ranks."""
