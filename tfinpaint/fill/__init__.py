"""The colour fill: flow propagation, the prefill, resampling, tiling, and the fill graphs."""
