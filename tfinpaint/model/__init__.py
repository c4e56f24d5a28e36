"""The network: gated layers, the generator, and the VGG feature extractor of the losses."""
