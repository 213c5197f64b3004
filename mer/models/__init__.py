"""Models: backbones (feature maps), heads, MERNet."""
