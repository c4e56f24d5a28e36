"""Fill a high-resolution (e.g. 3840x2160) clip through the tiling path, one frame at a time.

    # in-process, a fitted run (a progressive ladder or a single fit)
    python tools/tile_4k.py --run runs/clip4k --video frames4k/ --masks masks4k/ --out filled/
    # in-process, a SavedModel export; or a TF Serving endpoint
    python tools/tile_4k.py --export models/clip/1 --video ... --out ...
    python tools/tile_4k.py --target 127.0.0.1:8500 --model clip --video ... --out ...

Frames and masks are folders of images matched by sorted name; each frame is read, filled and
written (PNG, atomically) before the next is read, so memory is one frame plus a batch of tiles,
whatever the clip's length. Known pixels are the input's, bit for bit. A run is filled through
its whole ladder (`tfinpaint.fill.render.fill_frame`); an export or endpoint through
`tfinpaint.serving.remote.fill_frames`: whole frames for an export that reduces them to its
working size itself (`fills_at_working_size`), tiles of its working size for older exports.
Masks are read as drawn (plus --mask-dilation): an export grows its holes by its run's
`data.mask_dilation` itself; a run's ladder fills them as read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


from tfinpaint.console import quiet_tensorflow
from tfinpaint.errors import InputError, cli
from tfinpaint.io.progress import Progress
from tfinpaint.io.video import IMAGE_EXTENSIONS, dilate_masks, write_frames


def _images(folder: str) -> list[Path]:
    path = Path(folder)
    if not path.is_dir():
        raise InputError(f"{folder}: not a folder of images")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise InputError(f"{folder}: holds no images")
    return files


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_mask(path: Path, shape: tuple[int, int], threshold: int, dilation: int) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None or mask.shape != shape:
        raise InputError(f"{path}: not a readable mask of {shape[1]}x{shape[0]}")
    mask = (mask > threshold).astype(np.uint8)[None, ..., None]
    return (dilate_masks(mask, dilation) if dilation else mask)[0]


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 540x960, got '{text}'") from None
    return height, width


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a fitted run folder (progressive or single-stage)")
    source.add_argument("--export", help="a SavedModel export, run in this process")
    source.add_argument("--target", metavar="HOST:PORT", help="a TF Serving endpoint")
    parser.add_argument("--model", help="served model name (with --target)")
    parser.add_argument("--video", required=True, help="folder of frames")
    parser.add_argument("--masks", required=True, help="folder of masks, one per frame")
    parser.add_argument("--out", required=True, help="folder for the filled PNG frames")
    parser.add_argument("--tile-size", type=_size, help="HxW tile size, only for exports made "
                        "before fills_at_working_size (default: their working size)")
    parser.add_argument("--overlap", type=int, default=0, help="least grid overlap (export/target)")
    parser.add_argument("--batch", type=int, default=4, help="tiles per network call")
    parser.add_argument("--mask-threshold", type=int, default=0)
    parser.add_argument("--mask-dilation", type=int, default=0,
                        help="grow holes by N px (an export then grows them by its run's own)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _frame_filler(args):
    """`(frame, mask) -> filled frame` for the chosen model."""
    if args.run:
        from tfinpaint.fill.render import fill_frame, load_ladder

        config, ladder, base = load_ladder(args.run)
        config.progressive.tile_batch = args.batch
        return lambda frame, mask: fill_frame(ladder, frame, mask, base=base, config=config)

    from tfinpaint.serving import remote as client

    if args.export:
        predict = client.local_predict_fn(args.export)
        path = Path(args.export) / "assets" / "tfinpaint.json"
        info = json.loads(path.read_text()) if path.exists() else None
    else:
        if not args.model:
            raise InputError("--target needs --model NAME")
        predict = client.remote_predict_fn(args.target, args.model)
        info = client.fetch_model_info(args.target, args.model)
    if client.needs_prefilled(info):  # frame by frame, this tool never holds the whole clip
        raise InputError(f"{args.export or args.model}: a data.prefill: flow export takes the "
                         "whole clip's flow fill; fill with python -m tfinpaint.serving.client")
    # an export that fills at its working size takes the whole frame; older ones take tiles
    # (the real TF Serving does not say which: whole frames unless --tile-size, as the client)
    tile_size = client.tile_size_for(info, args.tile_size)
    grown = client.export_mask_dilation(info)  # the export grows the holes it is sent itself
    return lambda frame, mask: client.fill_frames(
        predict, args.model, frame[None], mask[None], tile_size=tile_size, overlap=args.overlap,
        batch=args.batch, concurrency=1, mask_dilation=grown)[0]


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()  # before anything imports TensorFlow
    frames, masks = _images(args.video), _images(args.masks)
    if len(frames) != len(masks):
        raise InputError(f"{len(frames)} frames but {len(masks)} masks")
    fill = _frame_filler(args)
    bar = None if args.quiet else Progress("filling", total=len(frames), unit="frame")
    for index, (frame_path, mask_path) in enumerate(zip(frames, masks)):
        frame = _read_rgb(frame_path)
        mask = _read_mask(mask_path, frame.shape[:2], args.mask_threshold, args.mask_dilation)
        write_frames(args.out, fill(frame, mask)[None], [frame_path.stem])
        if bar is not None:
            bar.update(index + 1)
    print(f"filled {len(frames)} frames into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
