"""Models: backbones, heads and checkpoint I/O."""
