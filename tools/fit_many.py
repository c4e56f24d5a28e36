"""Fit a list of videos, one job each, and pick up where an interrupted batch left off.

The list is a text file, one video a line: `VIDEO MASKS [NAME]` (whitespace-separated; `#`
starts a comment; MASKS is `-` for the built-in `sample`). Each video fits in its own process
(`python -m tfinpaint.train`) into `RUNS/NAME`, so one bad video never stops the others and
memory is returned between jobs. On a second invocation a run with a `result/` is done and
skipped; a run with a folder but no result was interrupted: `--resume` continues it from its
last checkpoint, otherwise it is left alone and reported. A summary of every job is written to
`RUNS/fit_many.json`.

Examples:
  python tools/fit_many.py videos.txt --runs runs/ --config configs/default.yaml --time-budget 5
  python tools/fit_many.py videos.txt --runs runs/ --resume        # after a crash or a reboot
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path


from tfinpaint.errors import InputError


@dataclass
class Job:
    video: str
    masks: str | None
    name: str


@dataclass
class Outcome:
    name: str
    status: str  # done | skipped | partial | failed
    seconds: float = 0.0
    detail: str = ""


def read_list(path: Path) -> list[Job]:
    """Parses the video list; a malformed line or a repeated name is an InputError."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise InputError(f"{path}: cannot read the video list ({error.strerror})") from None
    jobs, names = [], set()
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) not in (2, 3):
            raise InputError(f"{path}:{number}: expected 'VIDEO MASKS [NAME]', got {line.strip()!r}")
        video, masks = fields[0], None if fields[1] == "-" else fields[1]
        name = fields[2] if len(fields) == 3 else (Path(video.rstrip("/")).stem or f"video{number}")
        if name in names:
            raise InputError(f"{path}:{number}: run name {name!r} is used twice; add a NAME column")
        names.add(name)
        jobs.append(Job(video, masks, name))
    return jobs


def train_command(job: Job, run_dir: Path, *, resume: bool, configs: list[str],
                  train_args: list[str]) -> list[str]:
    """The train CLI call; a resumed run keeps the config saved in its folder."""
    command = [sys.executable, "-m", "tfinpaint.train", "--run-dir", str(run_dir), "--quiet",
               "--video", job.video] + (["--masks", job.masks] if job.masks else [])
    if resume:
        return command + ["--resume"] + train_args
    return command + [item for path in configs for item in ("--config", path)] + train_args


def run_jobs(jobs: list[Job], runs: Path, *, resume: bool, configs: list[str],
             train_args: list[str]) -> list[Outcome]:
    outcomes = []
    for job in jobs:
        run_dir = runs / job.name
        if (run_dir / "result").is_dir():
            outcomes.append(Outcome(job.name, "skipped", detail="already has a result"))
            continue
        partial = run_dir.exists()
        if partial and not resume:
            outcomes.append(Outcome(job.name, "partial",
                                    detail="interrupted earlier; pass --resume to continue it"))
            continue
        began = time.perf_counter()
        print(f"fit_many: {job.name} ({'resuming' if partial else 'fitting'})", file=sys.stderr, flush=True)
        done = subprocess.run(train_command(job, run_dir, resume=partial, configs=configs,
                                            train_args=train_args),
                              capture_output=True, text=True)
        seconds = round(time.perf_counter() - began, 1)
        if done.returncode == 0:
            outcomes.append(Outcome(job.name, "done", seconds))
        else:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            outcomes.append(Outcome(job.name, "failed", seconds, detail=last))
    return outcomes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1])
    parser.add_argument("videos", type=Path, help="the video list (VIDEO MASKS [NAME] per line)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="parent of the run folders")
    parser.add_argument("--resume", action="store_true", help="continue interrupted runs")
    parser.add_argument("--config", action="append", default=[], help="passed to tfinpaint.train")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to tfinpaint.train")
    parser.add_argument("--time-budget", type=float, metavar="MINUTES", help="per video")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        jobs = read_list(args.videos)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train_args = [item for pair in args.set for item in ("--set", pair)]
    if args.time_budget is not None:
        train_args += ["--time-budget", str(args.time_budget)]
    args.runs.mkdir(parents=True, exist_ok=True)
    outcomes = run_jobs(jobs, args.runs, resume=args.resume, configs=args.config,
                        train_args=train_args)
    summary = [asdict(outcome) for outcome in outcomes]
    (args.runs / "fit_many.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
