"""A trained model ready for scoring: an eager checkpoint (``.pt``), TorchScript (``.ts``) or ONNX (``.onnx``).

All three answer the same call: a float batch (B, 3, T, S, S) as :class:`mer.data.clip.ClipTransform`
builds it from the model's ``input`` spec -> numpy arrays ``emotion`` (B, E) probabilities,
``clip_aus`` (B, K) and ``frame_aus`` (B, T, K) probabilities. Exported files carry their metadata
(class and AU names, thresholds, the input spec, the training config) in the ONNX file's
``metadata_props`` (key ``mer``) and in a JSON sidecar ``<file>.json``, both written by
``python -m mer.export``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from mer.engine.metrics import present_aus

OUTPUTS = ("emotion", "clip_aus", "frame_aus", "attention")


@dataclass
class ScoringModel:
    run: Callable[[torch.Tensor], dict[str, np.ndarray]]
    config: DictConfig  # the training config (model, clip_sampler, data)
    class_names: list[str]
    au_names: list[int]
    kind: str = "eager"
    extras: dict = field(default_factory=dict)
    au_thresholds: list[float] | None = None  # per-AU decision thresholds chosen on validation; None: 0.5
    input: dict = field(default_factory=dict)  # the checkpoint's input spec (mer.data.clip.ClipSpec)
    path: str = ""
    digest: str = ""  # sha256 of the model file: what a result table records of the model that wrote it

    def present_aus(self, clip_aus: np.ndarray) -> list[str]:
        """(N, K) AU probabilities -> the AUs decided present per clip (``AU04+AU07``) at the model's thresholds."""
        return present_aus(clip_aus, self.au_thresholds, self.au_names)

    @property
    def crop_size(self) -> int:
        return int(self.input["size"])

    @property
    def num_frames(self) -> int:
        return int(self.input["num_frames"])

    @property
    def sampler(self) -> dict:
        """The clip sampler it was trained with (``clip_sampler`` config: name and options)."""
        return OmegaConf.to_container(self.config.clip_sampler, resolve=True)

    def __call__(self, clips: torch.Tensor) -> dict[str, np.ndarray]:
        return self.run(clips)


def probabilities(emotion, clip_aus, frame_aus) -> dict[str, np.ndarray]:
    """Logits (tensors or arrays) -> ``emotion`` softmax, ``clip_aus`` and ``frame_aus`` sigmoid, as numpy."""
    emotion, clip_aus, frame_aus = (torch.as_tensor(a).float() for a in (emotion, clip_aus, frame_aus))
    return {
        "emotion": torch.softmax(emotion, dim=1).numpy(),
        "clip_aus": torch.sigmoid(clip_aus).numpy(),
        "frame_aus": torch.sigmoid(frame_aus).numpy(),
    }


class ExportWrapper(torch.nn.Module):
    """MERNet with tuple outputs (emotion, clip_aus, frame_aus, attention): what tracing and ONNX need."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clip: torch.Tensor):
        out = self.model(clip)
        if "clip_aus" not in out:  # FER-only models still export the AU outputs, empty
            b, t = clip.shape[0], clip.shape[2]
            out["clip_aus"], out["frame_aus"] = clip.new_zeros(b, 0), clip.new_zeros(b, t, 0)
        return out["emotion"], out["clip_aus"], out["frame_aus"], out["attention"]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_scoring_model(path: str | Path, device: torch.device) -> ScoringModel:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    model = _load_scoring_model(path, device)
    model.path, model.digest = str(path.resolve()), file_digest(path)
    return model


def _load_scoring_model(path: Path, device: torch.device) -> ScoringModel:
    if path.suffix in (".onnx", ".ts", ".torchscript"):
        meta = exported_metadata(path)
        config = OmegaConf.create(meta["config"])
        if path.suffix == ".onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

            def run(clips: torch.Tensor) -> dict[str, np.ndarray]:
                emotion, clip_aus, frame_aus, _ = session.run(None, {"clip": clips.cpu().numpy()})
                return probabilities(emotion, clip_aus, frame_aus)

            kind = "onnx"
        else:
            module = torch.jit.load(str(path), map_location=device).eval()

            @torch.no_grad()
            def run(clips: torch.Tensor) -> dict[str, np.ndarray]:
                emotion, clip_aus, frame_aus, _ = module(clips.to(device))
                return probabilities(emotion.cpu(), clip_aus.cpu(), frame_aus.cpu())

            kind = "torchscript"
        return ScoringModel(
            run,
            config,
            list(meta["class_names"]),
            [int(a) for a in meta["au_names"]],
            kind,
            au_thresholds=meta.get("au_thresholds"),
            input=dict(meta["input"]),
        )

    from mer.models.checkpoint import load_model

    loaded = load_model(path, device)
    model, config, names, aus, thresholds = loaded.model, loaded.config, loaded.class_names, loaded.au_names, loaded.au_thresholds
    wrapper = ExportWrapper(model).eval()

    @torch.no_grad()
    def run(clips: torch.Tensor) -> dict[str, np.ndarray]:
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            emotion, clip_aus, frame_aus, _ = wrapper(clips.to(device, non_blocking=True))
        return probabilities(emotion.cpu(), clip_aus.cpu(), frame_aus.cpu())

    return ScoringModel(run, config, names, aus, "eager", {"module": model}, au_thresholds=thresholds, input=loaded.input)


METADATA_KEY = "mer"  # the ONNX metadata_props entry holding the JSON metadata


def exported_metadata(path: Path) -> dict:
    """The metadata of an exported model: from the ONNX file itself, else from ``<file>.json``."""
    if path.suffix == ".onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        if METADATA_KEY in props:
            return json.loads(props[METADATA_KEY])
    meta_path = path.with_name(path.name + ".json")
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: the exported model's metadata is missing (python -m mer.export writes it)")
    return json.loads(meta_path.read_text())
