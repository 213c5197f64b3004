"""mer: micro-expression video recognition.

    import mer
    table = mer.predict("recordings/", checkpoint="outputs/train/<run>/best.pt")   # a pandas DataFrame
    model = mer.load_model("best.onnx")                                            # for repeated calls
    metrics = mer.spotting_metrics(table, records)                                 # MEGC spotting scores

The commands: mer-train, mer-tune, mer-score, mer-evaluate, mer-export, mer-baseline, mer-study
(or python -m mer.<command>).
"""

__version__ = "0.1.0"
__all__ = ["load_model", "predict", "spotting_metrics"]


def __getattr__(name: str):
    # torch, OpenCV and pandas load on first use, not on `import mer`
    if name in __all__:
        from mer import api

        return getattr(api, name)
    raise AttributeError(f"module 'mer' has no attribute {name!r}")
