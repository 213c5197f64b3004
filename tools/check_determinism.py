"""Does generating the synthetic set twice give the same data? Checks each stage separately.

    python tools/check_determinism.py [--subjects 3] [--encodes 4]

1. The annotations of two generations (same seed) into two folders: must be identical.
2. The rendered frames of one clip, rendered again in this process: must be identical.
3. The decoded pixels of every clip of the two generations.
4. The same rendered frames encoded ``--encodes`` times in a row with the generator's encoder
   settings, decoded each time: how many distinct results.

Prints one line per stage, with the mean and largest absolute pixel difference where pixels differ.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

import cv2
import numpy as np

from mer.data.synthetic import generate
from mer.data.synthetic.generator import plan_clips, render_clip
from mer.data.synthetic.settings import make_settings
from mer.data.video import write_video


def decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--encodes", type=int, default=4)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp, "a"), Path(tmp, "b")
        generate(a, n_subjects=args.subjects, workers=1)
        generate(b, n_subjects=args.subjects, workers=1)
        same = (a / "annotations.csv").read_bytes() == (b / "annotations.csv").read_bytes()
        print(f"1. annotations of two generations: {'identical' if same else 'DIFFERENT'}")

        settings = make_settings(n_subjects=args.subjects, workers=1)
        task = plan_clips(settings)[0]
        first, again = render_clip(task)[0], render_clip(task)[0]
        print(f"2. rendered frames of one clip, twice: {'identical' if np.array_equal(first, again) else 'DIFFERENT'}")

        clips = sorted(p.relative_to(a) for p in a.rglob("*.mp4"))
        diffs = [np.abs(decode(a / c).astype(int) - decode(b / c).astype(int)) for c in clips]
        differing = sum(bool(d.any()) for d in diffs)
        print(
            f"3. decoded pixels of two generations: {differing} of {len(clips)} clips differ; "
            f"mean |diff| {np.mean([d.mean() for d in diffs]):.2f} grey levels, largest {max(int(d.max()) for d in diffs)}"
        )

        hashes = []
        for i in range(args.encodes):
            path = write_video(Path(tmp, f"enc{i}.mp4"), first, settings.fps, crf=settings.crf, options={"threads": "1"})
            hashes.append(hashlib.sha1(decode(path).tobytes()).hexdigest()[:10])
        print(
            f"4. the same frames encoded {args.encodes} times in one process: {len(set(hashes))} distinct decoded results ({', '.join(hashes)})"
        )


if __name__ == "__main__":
    main()
