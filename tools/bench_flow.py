"""Flow benchmark: milliseconds per onset -> apex flow for each method, at two frame sizes.

    python tools/bench_flow.py [--pairs 8] [--repeats 3] [--sizes 112 56] [--threads 1]

The (onset, apex) frame pairs come from the built-in synthetic set (generated on first use), resized
to each size. Methods are timed pair by pair, interleaved, so machine noise hits all alike; each
pair's time is the median over ``repeats``. Also timed: affine head-motion removal and strain, the
rest of the motion front end. OpenCV runs on ``--threads`` threads (1 = what one DataLoader worker
gets; scikit-image's TV-L1 is single-threaded numpy either way).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from mer.data.formats import read_annotations
from mer.data.motion import compute_flow, list_flows, optical_strain, remove_head_motion
from mer.data.synthetic import ensure_dataset
from mer.data.video import open_video


def onset_apex_pairs(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """RGB (onset, apex) frames of the first ``n`` clips of the synthetic set."""
    records = read_annotations(ensure_dataset(), format="dfme")[:n]
    pairs = []
    for r in records:
        with open_video(r.path, "pyav", fps=r.fps) as source:
            onset, apex = source.get_frames([r.onset, r.apex])
        pairs.append((onset, apex))
    return pairs


def ms_per_call(fns: dict, items: list, repeats: int) -> dict[str, float]:
    for fn in fns.values():
        fn(items[0])  # warm up (DIS object creation, first allocation)
    times = {name: np.zeros((repeats, len(items))) for name in fns}
    for r in range(repeats):
        for i, item in enumerate(items):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn(item)
                times[name][r, i] = time.perf_counter() - start
    return {name: 1000.0 * np.median(t, axis=0).mean() for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 56])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    pairs = onset_apex_pairs(args.pairs)
    methods = list_flows()
    rows = []
    for size in args.sizes:
        resized = [tuple(cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in p) for p in pairs]
        fns = {m: (lambda p, m=m: compute_flow(*p, method=m)) for m in methods}
        flow = compute_flow(*resized[0])
        fns["head motion (affine)"] = lambda p, flow=flow: remove_head_motion(flow, "affine")
        fns["strain"] = lambda p, flow=flow: optical_strain(flow)
        rows.append((size, ms_per_call(fns, resized, args.repeats)))
    print(f"ms per call, mean over {len(pairs)} onset-apex pairs (median of {args.repeats}), OpenCV threads: {args.threads}")
    names = list(rows[0][1])
    print("| size | " + " | ".join(names) + " | tvl1 / dis |")
    print("|---|" + "---|" * (len(names) + 1))
    for size, ms in rows:
        cells = " | ".join(f"{ms[n]:.2f}" for n in names)
        print(f"| {size} px | {cells} | {ms['tvl1'] / ms['dis']:.0f}x |")


if __name__ == "__main__":
    main()
