"""Fill a video through a TF Serving-compatible server: whole native frames, batched to fit.

    python -m tfinpaint.serving.client --target 127.0.0.1:8500 --model clip \\
        --video clip.mp4 --masks clip_masks/ --out filled/

Works with `python -m tfinpaint.serve` and with the real `tensorflow_model_server`. Exports
reduce frames to their working size inside the graph, so whole frames are sent, as many per
request as fit --max-message-mb; --tile-size is only for exports made before that (their
tfinpaint.json lacks `fills_at_working_size`), which fill at the size they are sent: see
`tfinpaint.serving.remote`.

An export of a `data.prefill: flow` run also takes the clip's flow fill, `prefilled`: the client
computes it once over the whole clip it reads, with the export's `flow` settings (the config's
defaults where the server does not report them, as the real TF Serving does not), and sends each
request its slice. Such an export fills whole frames only (--tile-size is refused).

Masks are sent as drawn: an export grows its holes by its run's `data.mask_dilation` itself (its
tfinpaint.json's `mask_dilation`), as `infer` does, and the client grows them by as much for the
flow fill and for pasting the answer; --mask-dilation grows them by N px more before all that.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import grpc

from tfinpaint.console import quiet_tensorflow
from tfinpaint.errors import InputError, cli
from tfinpaint.io.progress import Progress


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 540x960, got '{text}'") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got '{text}'")
    return height, width


@cli
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfinpaint.serving.client",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, help="server HOST:PORT")
    parser.add_argument("--model", required=True, help="served model name")
    parser.add_argument("--version", type=int, help="model version (default: latest)")
    parser.add_argument("--video", required=True, help="video file or folder of frames")
    parser.add_argument("--masks", required=True, help="mask folder, image or video")
    parser.add_argument("--out", required=True, help="folder for PNG frames and video.mp4")
    parser.add_argument("--overwrite", action="store_true", help="replace files in --out")
    parser.add_argument("--batch", type=int, default=4, help="frames or tiles per request")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    parser.add_argument("--mask-dilation", type=int, default=0,
                        help="grow holes by N px more, on top of the run's own dilation, which "
                             "the export applies itself (default 0: the masks as drawn)")
    parser.add_argument("--mask-threshold", type=int, default=0,
                        help="mask values above this are hole")
    parser.add_argument("--tile-size", type=_size,
                        help="only for exports made before fills_at_working_size: tile frames "
                             "larger than HxW (default: as the server reports it, else none; "
                             "refused for a flow run's export)")
    parser.add_argument("--max-message-mb", type=int, default=64,
                        help="gRPC message limit, as the server's (whole frames per request "
                             "are capped to fit)")
    parser.add_argument("--overlap", type=int, help="least tile overlap in pixels")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=5,
                        help="retries on UNAVAILABLE / DEADLINE_EXCEEDED")
    args = parser.parse_args(argv)
    quiet_tensorflow()  # before anything imports TensorFlow
    if args.batch < 1 or args.concurrency < 1:
        raise InputError("--batch and --concurrency must be at least 1")
    if args.max_message_mb < 1:
        raise InputError("--max-message-mb must be at least 1")
    if args.mask_dilation < 0 or args.retries < 0 or (args.overlap or 0) < 0:
        raise InputError("--mask-dilation, --overlap and --retries must not be negative")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"{out}: folder is not empty (pass --overwrite to replace its files)")

    from tfinpaint.export.names import NEEDS_PREFILLED, PREFILLED
    from tfinpaint.serving.remote import (clip_prefill, connect, export_mask_dilation,
                                          fetch_model_info, fetch_signature_inputs, fill_frames,
                                          flow_settings, needs_prefilled, remote_predict_fn,
                                          tile_size_for)
    from tfinpaint.io.video import read_masks, read_video, write_frames, write_video

    video = read_video(args.video)
    num_frames, height, width, _ = video.frames.shape
    masks = read_masks(args.masks, num_frames, height, width, threshold=args.mask_threshold,
                       dilation=args.mask_dilation, names=video.names)

    stub = connect(args.target, max_message_mb=args.max_message_mb)
    try:
        info = fetch_model_info(stub, args.model, version=args.version, retries=args.retries)
        grown = export_mask_dilation(info)  # None: the server does not say
        told_only_signatures = info is None and PREFILLED in (fetch_signature_inputs(
            stub, args.model, version=args.version, retries=args.retries) or ())
        if told_only_signatures:  # all the real TF Serving tells of a flow run's export
            info = {NEEDS_PREFILLED: True}
        tile_size = tile_size_for(info, args.tile_size)
        if told_only_signatures:
            print("note: the server does not report the export's flow settings or mask "
                  f"dilation; computing its '{PREFILLED}' input with the config's defaults and "
                  "the masks as read", file=sys.stderr)
        if info is None and tile_size is None:
            print("note: the server does not describe the export; sending whole frames (right "
                  "for exports that fill at their working size; pass --tile-size for older ones)",
                  file=sys.stderr)
        prefilled = None
        if needs_prefilled(info):  # the whole clip's flow fill, once; each request its slice
            print(f"computing the clip's flow fill ({num_frames} frames) for the export's "
                  f"'{PREFILLED}' input", file=sys.stderr)
            prefilled = clip_prefill(video.frames, masks, flow_settings(info),
                                     mask_dilation=grown or 0)
        predict = remote_predict_fn(stub, args.model, version=args.version,
                                    timeout=args.timeout, retries=args.retries)
        bar = Progress("filling", total=num_frames, unit="frame")
        filled = fill_frames(predict, args.model, video.frames, masks, tile_size=tile_size,
                             overlap=args.overlap, batch=args.batch,
                             concurrency=args.concurrency, message_mb=args.max_message_mb,
                             prefilled=prefilled, mask_dilation=grown, progress=bar.update)
    except grpc.RpcError as error:
        raise InputError(f"server {args.target}, model '{args.model}': {error.code().name}: "
                         f"{error.details()}") from None

    write_frames(out, filled, video.names)
    write_video(out / "video.mp4", filled, video.fps, audio_from=video.source)
    print(f"wrote {num_frames} frames and video.mp4 to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
