"""The commands as a user meets them: installed from a wheel, --help, one-line errors with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from mer.data.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    return generate(
        tmp_path_factory.mktemp("data"), n_subjects=4, clips_per_subject=2, size=48, clip_seconds=0.2, seed=2, workers=1
    )


def run(*args: str, cwd: Path, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "MER_DEBUG")}
    return subprocess.run([python, "-m", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["model=nope"],
            "mer-train: error: In 'train': Could not find 'model/nope'; valid choices for model: frame_cnn, mvit_s, ",
        ),
        (["model.backbone=nope"], "mer-train: error: unknown backbone 'nope'; valid choices: frame_cnn, mvit_s, mvit_v2_s"),
        (
            ["data.representation=optical"],
            "mer-train: error: unknown input representation 'optical'; valid choices: frames, diff, flow, flow_strain",
        ),
        (["trainer.epochs=2", "data.synthetic.amplitud=2"], "mer-train: error: Could not override 'data.synthetic.amplitud'."),
        (
            ["trainer.epochs=abc"],
            "mer-train: error: Error merging override trainer.epochs=abc (Value 'abc' of type 'str' could not be",
        ),
        (["trainer.epochs=0"], "mer-train: error: trainer.epochs must be > 0, got 0"),
        (["trainer.optimizer=adam"], "mer-train: error: unknown trainer.optimizer 'adam'; valid choices: adamw, sgd"),
    ],
)
def test_a_configuration_error_is_one_line_and_exit_code_2(tiny_set, tmp_path, overrides, message):
    data = [] if any(o.startswith("data.synthetic") for o in overrides) else ["data=dfme", f"data.annotations={tiny_set}"]
    done = run("mer.train", *data, *overrides, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(message), last
    assert (
        not list((tmp_path / "run").glob("fold*")) and not (tmp_path / "run" / "metrics.json").exists()
    )  # refused before any work


@pytest.mark.parametrize("overrides", [["model.backbone=nope"], ["trainer.epochs=abc"]])  # one of ours, one of Hydra's
def test_debug_shows_the_traceback_of_a_configuration_error(tiny_set, tmp_path, overrides):
    data = ["data=dfme", f"data.annotations={tiny_set}"]
    debug = run("mer.train", *data, *overrides, f"hydra.run.dir={tmp_path / 'run'}", "--debug", cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_every_generator_setting_is_a_training_override_and_help_names_the_program(tmp_path):
    done = run("mer.train", "--cfg", "job", "data.synthetic.amplitude=2.5", "data.synthetic.head_rotation=0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "amplitude: 2.5" in done.stdout and "head_rotation: 0.0" in done.stdout
    help_text = run("mer.score", "--help", cwd=tmp_path).stdout
    assert help_text.startswith("mer-score: spot and recognise micro-expressions")
    assert "data: 4dme, base, casme2" in help_text and "checkpoint=RUN/best.pt" in help_text
    assert (
        "  threshold: 6.0\n" in run("mer.score", "--cfg", "job", "spotting.threshold=6", cwd=tmp_path).stdout
    )  # as docs/scoring.md writes it


@pytest.mark.slow
def test_the_wheel_ships_its_configs_and_its_commands_run_from_anywhere(tmp_path):
    """pip install of the built wheel (not editable) into a fresh environment: the commands find
    their configs through the package. The fresh environment borrows this one's dependencies."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("mer-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()
    # this environment's packages, after the fresh one's own (its mer is the wheel's)
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = subprocess.run(
        [python, "-c", "import mer; print(mer.__file__)"], cwd=elsewhere, capture_output=True, text=True
    ).stdout
    assert located.startswith(site), located
    job = run("mer.train", "--cfg", "job", cwd=elsewhere, python=python)
    assert job.returncode == 0, job.stderr[-2000:]
    assert "representation:" in job.stdout and "n_subjects: 24" in job.stdout
    score_help = subprocess.run([str(venv / "bin" / "mer-score"), "--help"], cwd=elsewhere, capture_output=True, text=True)
    assert score_help.returncode == 0 and score_help.stdout.startswith("mer-score:"), score_help.stderr[-2000:]
