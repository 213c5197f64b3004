"""Training engine: the loop, metrics, reports."""
