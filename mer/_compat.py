"""The one place that adapts third-party packages to the versions we run with.

pytorchvideo 0.1.5 imports ``torchvision.transforms.functional_tensor``, a module
torchvision renamed to ``_functional_tensor`` in 0.17. Aliasing it before
pytorchvideo is imported lets the last pytorchvideo release run on current
torchvision. Use :func:`import_pytorchvideo` (or import this module) before any
``pytorchvideo`` import.
"""

from __future__ import annotations

import importlib
import sys
import warnings


def _alias_functional_tensor() -> None:
    name = "torchvision.transforms.functional_tensor"
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = importlib.import_module("torchvision.transforms._functional_tensor")


_alias_functional_tensor()


def import_pytorchvideo(module: str = "pytorchvideo.models"):
    """Import a pytorchvideo module with the shim applied and its import-time noise silenced."""
    with warnings.catch_warnings():
        # pytorchvideo scripts a few helpers at import; torch warns that jit.script is deprecated.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(module)
