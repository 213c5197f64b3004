"""The commands' shared front: Hydra for the configuration, one-line errors for the user.

    @command("train")
    def main(cfg: DictConfig) -> float: ...

``mer-train`` / ``python -m mer.train`` then behave like any Hydra app (overrides, ``--cfg job``,
``-m`` multirun, ``--help``), except that a configuration or input error (an unknown option, a
missing file, a bad annotation row, a value out of range) ends with one line on stderr naming the
problem and, where there are, the valid choices, and exit code 2, without a traceback. The
traceback is still there for whoever wants it: ``--debug`` or ``HYDRA_FULL_ERROR=1``. Any other
exception is a bug and keeps its traceback (exit code 1).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from mer.data.records import AnnotationError
from mer.data.video import VideoError

# Exceptions that mean "the command was given something wrong", not "mer has a bug".
USER_ERRORS = (
    HydraException,
    OmegaConfBaseException,
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    VideoError,
    AnnotationError,
)

EXIT_USAGE = 2  # as argparse and the shells use it
EXIT_FAILED = 1


class PartlyFailed(RuntimeError):
    """A batch job finished, but some of its parts failed (its outputs say which and why): exit code 1, one line."""


class SomeVideosFailed(PartlyFailed):
    """A scoring job finished, but some of its videos failed (their rows say why)."""


CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # package data: found through the package


def register_configs() -> None:
    """Config nodes made from settings dataclasses, so their keys and types are declared once, in
    the dataclass: ``synthetic_settings`` (the generator's, ``data.synthetic``),
    ``spotting_settings`` (the spotter's, ``spotting`` in score.yaml) and ``trainer_settings``
    (the training loop's, the ``trainer`` group)."""
    from hydra.core.config_store import ConfigStore

    from mer.data.synthetic.settings import SyntheticSettings
    from mer.engine.loop import TrainerConfig
    from mer.scoring.spotting import SpottingConfig

    store = ConfigStore.instance()
    store.store(name="synthetic_settings", node=SyntheticSettings)
    store.store(name="spotting_settings", node=SpottingConfig)
    store.store(name="trainer_settings", node=TrainerConfig)


register_configs()


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """A command's config as the command line would give it (for tools, tests and notebooks):
    ``compose("train", ["model=r3d_18", "trainer.epochs=5"])``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside a running command (a search's trials)
        return hydra_compose(config_name=config_name, overrides=list(overrides))
    with initialize_config_module("mer.configs", version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def override_key(override: str) -> str:
    """The config key a command-line override sets: ``+data.extra=1`` -> ``data.extra``, ``model=r3d_18`` -> ``model``."""
    return override.lstrip("+~").split("=", 1)[0]


def one_line(exc: BaseException) -> str:
    """An exception's message as one line: Hydra's option lists joined, whitespace collapsed."""
    text = str(exc)
    cause = exc.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause) not in text:
        text += f" ({cause})"
    # Hydra: "Could not find 'model/x'\n\nAvailable options in 'model':\n\ta\n\tb" -> "...; valid choices: a, b"
    text = re.sub(r"\s*Available options in '([^']+)':\s*", r"; valid choices for \1: ", text)
    text = re.sub(r"\n\t", ", ", text).replace(": , ", ": ")
    text = text.split("Config search path:")[0]  # Hydra appends where it looked for configs
    text = re.sub(r"\s+", " ", text).strip().rstrip(",")
    return re.sub(r" object_type=[^\s)]+", "", text.replace("full_key: ", "key: "))


def command(config_name: str) -> Callable[[Callable], Callable[[], object]]:
    """``hydra.main`` on ``mer/configs/<config_name>.yaml`` with mer's error handling (see the module doc)."""

    def decorate(task: Callable) -> Callable[[], object]:
        prog = f"mer-{config_name}"

        @functools.wraps(task)
        def checked_task(cfg: DictConfig) -> object:
            try:
                return task(cfg)
            except USER_ERRORS as exc:  # raised by the command itself, once the config was composed
                if _wants_traceback():
                    raise
                _fail(prog, exc)
            except PartlyFailed as exc:
                if HydraConfig.get().mode == RunMode.MULTIRUN:
                    raise  # Hydra runs the other jobs, then raises it again
                print(f"{prog}: {exc}", file=sys.stderr)
                sys.exit(EXIT_FAILED)

        hydra_main = hydra.main(version_base="1.3", config_path="configs", config_name=config_name)(checked_task)

        @functools.wraps(task)
        def main() -> object:
            if "--debug" in sys.argv[1:] or os.environ.get("HYDRA_FULL_ERROR") == "1":
                os.environ["MER_DEBUG"] = "1"
            if "--debug" in sys.argv[1:]:
                sys.argv.remove("--debug")
            traceback = _wants_traceback()
            # Hydra re-raises composition errors instead of printing them when this is set; they are
            # printed (or not) below.
            os.environ["HYDRA_FULL_ERROR"] = "1"
            try:
                return hydra_main()
            except USER_ERRORS as exc:  # composing the config failed: an unknown option or key
                if traceback:
                    raise
                _fail(prog, exc)
            except PartlyFailed as exc:
                print(f"{prog}: {exc}", file=sys.stderr)
                sys.exit(EXIT_FAILED)

        return main

    return decorate


def _wants_traceback() -> bool:
    return os.environ.get("MER_DEBUG") == "1"


def _fail(prog: str, exc: BaseException) -> None:
    print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
    sys.exit(EXIT_USAGE)
