"""Export a trained model for deployment: ``python -m mer.export checkpoint=RUN/best.pt format=onnx|torchscript``.

Writes ``<output>`` (default: the checkpoint's path with ``.onnx`` or ``.ts``) and ``<output>.json``
with the model's metadata (class names, AU names and thresholds, the input spec, the training
config); an ONNX file also carries it in its ``metadata_props`` (key ``mer``). ``mer-score
checkpoint=<output>`` and ``mer.load_model(<output>)`` read it. The exported graph takes the model's
input, a batch (B, 3, T, S, S) as ``mer.data.clip.ClipTransform`` builds it (the motion step, optical
flow, stays in Python before the graph), any B, and returns (emotion logits, clip AU logits, frame
AU logits, attention); it is checked against the eager model on a random batch before the command
returns.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from mer.cli import command
from mer.models.checkpoint import load_model
from mer.scoring.models import METADATA_KEY, OUTPUTS, ExportWrapper, load_scoring_model, probabilities

log = logging.getLogger("mer.export")


def make_exportable(model: torch.nn.Module) -> None:
    """Same function, traceable form: default memory format (channels_last is a CPU speed-up only)
    and pytorchvideo's Swish (a custom autograd function TorchScript cannot save) as nn.SiLU."""
    for module in model.modules():
        if getattr(module, "channels_last", False):
            module.channels_last = False
        for name, child in module.named_children():
            if type(child).__name__ == "Swish" and type(child).__module__.startswith("pytorchvideo"):
                setattr(module, name, torch.nn.SiLU())  # x * sigmoid(x), identical
    model.to(memory_format=torch.contiguous_format)


def export(
    checkpoint: str | Path, fmt: str = "onnx", output: str | Path | None = None, *, batch: int = 2, tolerance: float = 1e-4
) -> Path:
    checkpoint = Path(checkpoint)
    if fmt not in ("onnx", "torchscript"):
        raise ValueError(f"unknown export format {fmt!r}; valid choices: onnx, torchscript")
    output = Path(output) if output else checkpoint.with_suffix(".onnx" if fmt == "onnx" else ".ts")
    loaded = load_model(checkpoint, torch.device("cpu"))
    model = loaded.model
    make_exportable(model)
    wrapper = ExportWrapper(model).eval()
    t, s = int(loaded.input["num_frames"]), int(loaded.input["size"])
    example = torch.randn(batch, 3, t, s, s, generator=torch.Generator().manual_seed(0))
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        wrapper(example)  # builds the pooling matrix, so the traced graph holds it as a constant
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and exporter notices about deprecated paths
        if fmt == "onnx":
            torch.onnx.export(
                wrapper,
                (example,),
                str(output),
                input_names=["clip"],
                output_names=list(OUTPUTS),
                dynamic_axes={"clip": {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS}},
                opset_version=17,
                dynamo=False,
            )
        else:
            torch.jit.trace(wrapper, example).save(str(output))
    meta = {
        "class_names": loaded.class_names,
        "au_names": loaded.au_names,
        "au_thresholds": loaded.au_thresholds,
        "input": loaded.input,
        "config": OmegaConf.to_container(loaded.config, resolve=True),
        "source": str(checkpoint),
        "format": fmt,
    }
    if fmt == "onnx":  # the file carries its own metadata; the sidecar is for TorchScript's sake and humans
        import onnx

        graph = onnx.load(str(output))
        graph.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta))
        onnx.save(graph, str(output))
    output.with_name(output.name + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    # check: the exported model answers like the eager one, on another batch size too
    check = torch.randn(batch + 1, 3, t, s, s, generator=torch.Generator().manual_seed(1))
    exported = load_scoring_model(output, torch.device("cpu"))(check)
    with torch.no_grad():
        reference = probabilities(*wrapper(check)[:3])
    gap = max(float(np.abs(exported[k] - reference[k]).max()) if reference[k].size else 0.0 for k in reference)
    if gap > tolerance:  # no file that does not match is left behind
        output.unlink(missing_ok=True)
        output.with_name(output.name + ".json").unlink(missing_ok=True)
        raise RuntimeError(f"{output}: the exported model differs from the checkpoint by {gap:.2e} (> {tolerance:g})")
    log.info("wrote %s (+ .json); outputs match the checkpoint to %.1e", output, gap)
    return output


@command("export")
def main(cfg: DictConfig) -> None:
    export(cfg.checkpoint, cfg.format, cfg.output)


if __name__ == "__main__":
    main()
