"""Figures (matplotlib, Agg backend): explanation panels, overlays, contours.

`figure` holds the pieces both figures share; `explanation` (one explanation) and
`multiple` (several explanations, contrastive) compose them."""

import matplotlib

matplotlib.use("Agg")
