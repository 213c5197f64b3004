"""Command line: ``python -m mer.data.synthetic [out_dir=DIR] [key=value ...]`` (Hydra-style options)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, fields, replace

from mer.data.synthetic.cache import dataset_digest, ensure_dataset
from mer.data.synthetic.generator import generate
from mer.data.synthetic.settings import SyntheticSettings


def main(argv: list[str] | None = None) -> int:
    """``python -m mer.data.synthetic [out_dir=DIR] [key=value ...]``; without out_dir: the cached set."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(
            main.__doc__
            + "\noptions: out_dir, cache_dir, "
            + ", ".join(f"{f.name}={f.default}" for f in fields(SyntheticSettings))
        )
        return 0
    try:
        cli = OmegaConf.to_container(OmegaConf.from_dotlist(args))
    except OmegaConfBaseException as exc:
        print(f"error: {' '.join(str(exc).split())} (options are key=value)", file=sys.stderr)
        return 2
    out_dir, cache_dir = cli.pop("out_dir", None), cli.pop("cache_dir", None)
    valid = ["out_dir", "cache_dir"] + [f.name for f in fields(SyntheticSettings)]
    unknown = [k for k in cli if k not in valid]
    if unknown:
        print(f"error: unknown option {unknown[0]!r}; valid: {', '.join(valid)}", file=sys.stderr)
        return 2
    try:
        typed = OmegaConf.merge(OmegaConf.structured(SyntheticSettings), cli)
        settings = replace(SyntheticSettings(), **OmegaConf.to_container(typed))
        settings.check()
    except (OmegaConfBaseException, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    options = asdict(settings)
    path = generate(out_dir, **options) if out_dir is not None else ensure_dataset(cache_dir, **options)
    meta = json.loads((path.parent / "meta.json").read_text())
    counts = ", ".join(f"{e} {n}" for e, n in sorted(meta["class_counts"].items(), key=lambda kv: -kv[1]))
    print(f"{path}: {meta['n_clips']} clips ({counts}) in {time.perf_counter() - started:.1f} s")
    print(f"sha256 of the set: {dataset_digest(path.parent)}")
    return 0
