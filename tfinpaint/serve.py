"""Serve exported videos over TensorFlow Serving's gRPC API, locally (`tfinpaint.serving.server`).

    python -m tfinpaint.serve --model-base models/clip --port 8500
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Sequence

from tfinpaint.console import quiet_tensorflow
from tfinpaint.errors import InputError, cli


@cli
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfinpaint.serve", description=__doc__.split(
        "\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-base", required=True,
                        help="models/NAME, holding integer version folders")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port; 0 picks a free one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--model-name", help="name clients ask for (default: the folder name)")
    parser.add_argument("--max-message-mb", type=int, default=64)
    parser.add_argument("--max-concurrent", type=int, default=4,
                        help="predictions running at once; more wait in a queue")
    parser.add_argument("--max-queued", type=int, default=16,
                        help="calls waiting beyond the running ones; more get RESOURCE_EXHAUSTED")
    parser.add_argument("--max-pixels", type=int, default=1 << 24,
                        help="largest N*H*W of one input tensor")
    args = parser.parse_args(argv)
    quiet_tensorflow()  # before anything imports TensorFlow
    for option in ("max_message_mb", "max_concurrent", "max_pixels"):
        if getattr(args, option) < 1:
            raise InputError(f"--{option.replace('_', '-')} must be at least 1")
    if args.max_queued < 0:
        raise InputError("--max-queued must be at least 0")

    from tfinpaint.serving.server import serve

    server, port = serve(args.model_base, args.port, host=args.host, model_name=args.model_name,
                         max_message_mb=args.max_message_mb, max_concurrent=args.max_concurrent,
                         max_queued=args.max_queued, max_pixels=args.max_pixels)
    name = args.model_name or Path(args.model_base).resolve().name
    print(f"serving model '{name}' from {args.model_base} on {args.host}:{port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    finally:
        server.stop(grace=5).wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
