"""A name -> builder registry, one per extension point (formats, samplers, backbones, losses).

Modelled on timm's ``register_model`` / ``list_models`` / ``create_model``: a decorator fills
the table, ``names()`` lists it (with an optional glob), and an unknown name raises an error
that lists the valid ones.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(fn: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = fn
            return fn

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries))
            raise ValueError(f"unknown {self.kind} {name!r}; valid choices: {valid}") from None

    def build(self, name: str, *args, **kwargs):
        """Call the builder registered as ``name``; ``None`` kwargs are dropped so config nulls keep
        the builder's defaults, and a wrong keyword becomes a one-line error naming the builder."""
        builder = self.get(name)
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        try:
            inspect.signature(builder).bind(*args, **kwargs)
            return builder(*args, **kwargs)
        except TypeError as exc:
            # a keyword the builder (or the library it passes **kwargs to) does not take: a config typo
            if "argument" not in str(exc):
                raise
            raise ValueError(f"{self.kind} {name!r}: {exc}") from None

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
