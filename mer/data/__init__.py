"""Data: clip records, annotation readers, video sources, samplers, datasets, splits."""
