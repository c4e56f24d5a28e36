"""Mask propagation: one annotated mask spread to every frame of a clip (`spread.propagate`)."""
