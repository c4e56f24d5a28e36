"""Make evaluation masks for a clip with one of the paper's two protocols.

    python tools/make_masks.py --clip clip/ --out clip_masks/ --protocol fixed
    python tools/make_masks.py --clip clip/ --out clip_masks/ --protocol object \
        --source other_video_masks/ --shift 20 0 --dilation 5

Writes one PNG per frame of the clip (0 known, 255 hole), named like the clip's frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence


import numpy as np

from tfinpaint.errors import InputError, cli
from tfinpaint.evaluation import protocols
from tfinpaint.io import video


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", required=True, help="the clip: a folder of frames or a video")
    parser.add_argument("--out", required=True, help="folder for the mask PNGs")
    parser.add_argument("--protocol", choices=("fixed", "object"), required=True)
    parser.add_argument("--source", help="object protocol: another video's mask folder")
    parser.add_argument("--shift", type=int, nargs=2, default=(0, 0), metavar=("DX", "DY"),
                        help="object protocol: move the borrowed masks by DX, DY pixels")
    parser.add_argument("--dilation", type=int, default=0, help="grow the holes by N pixels")
    args = parser.parse_args(argv)
    if args.protocol == "object" and not args.source:
        raise InputError("--protocol object needs --source, a folder of another video's masks")
    if args.dilation < 0:
        raise InputError(f"--dilation must be >= 0, got {args.dilation}")
    return args


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    clip = video.read_video(args.clip)
    num_frames, height, width = clip.frames.shape[:3]
    if args.protocol == "fixed":
        masks = protocols.fixed_masks(num_frames, height, width)
    else:
        source = video.read_video(args.source).frames.max(axis=-1)
        masks = protocols.object_masks(source, num_frames, height, width, shift=tuple(args.shift))
    masks = protocols.dilate(masks, args.dilation)
    out = Path(args.out)
    video.write_frames(out, np.repeat(masks * 255, 3, axis=-1), clip.names)
    empty = int((masks.reshape(num_frames, -1).max(axis=1) == 0).sum())
    print(f"wrote {num_frames} masks ({args.protocol}, {width}x{height}) to {out}"
          + (f"; {empty} of them empty (the shifted object left the frame)" if empty else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
