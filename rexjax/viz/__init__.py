"""Figures (matplotlib's object-oriented API: `Figure` objects written with `savefig`, no
pyplot state and no backend switch, so they work headless whatever backend the process
uses): explanation panels, overlays, contours.

`figure` holds the pieces both figures share; `explanation` (one explanation) and
`multiple` (several explanations, contrastive) compose them."""
