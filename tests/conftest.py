"""Shared test set-up: the config nodes made from settings dataclasses are registered with Hydra
(as every command does on import), so tests can compose any config."""

import mer.cli  # noqa: F401
