"""mer: micro-expression video recognition."""

__version__ = "0.1.0"
