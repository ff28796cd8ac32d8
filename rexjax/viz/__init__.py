"""Figures (matplotlib, Agg backend): explanation panels, overlays, contours."""
