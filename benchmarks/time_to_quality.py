"""Hole PSNR against the truth over wall-clock fitting time, for two or three configurations side by side.

The configurations (A, B and, when any --c, --set-c or --name-c is given, C) fit in the same process, taking turns in short slices of fitting time, so
that on a shared, noisy machine each sees the same load. Each fits with its budget as
`train.time_budget_minutes`, so a schedule that decays over the time budget ends with the
race. Each has its own fit clock: it counts only the time spent fitting (tracing included),
never the evaluations, which render every frame at the working resolution and score the hole
against the truth every `--eval-every` seconds of that clock.

Clips:
  sample  the built-in synthetic clip (its own masks and hidden truth);
  bmx     --bmx-data (default ../shared/data/bmx-trees beside the repository) at 240x432 (the first `--bmx-frames` frames) with the
          paper's fixed-mask protocol: a centred rectangle 1/4 wide and 1/4 high on every frame.
          The truth is the real footage; the network never sees the pixels behind the rectangle.
  crossing        crossing (beside bmx-trees) with its walkers' own masks moved right by 1/18 of the width.
  crossing-rider  crossing under bmx-trees' rider masks (the paper's object protocol).
  dog             dog-agility under bmx-trees' rider masks.
Every clip but the sample is also scored off and on the footage's own annotated objects (its
`annotations/`: the rider, the walkers, the dog), in the final scores: off them is scenery that
some frame may show; on them is what moves under the hole, which no frame may show.

With a flow fill and `generator.flow_keep` and `smooth_share` (default "auto"), every evaluation
first measures the shares of the flow fill and of the smooth fill on held-out training holes, as
the fit does when it ends, and scores the blend; the network's own score is logged beside it,
and the score without the smooth share (the keep measured alone, the default before it).

Writes `OUT/time_to_quality.json` and `OUT/time_to_quality.png` (PSNR vs seconds, one panel per
clip, OpenCV's Telea fill as a dashed line).

Examples:
  python benchmarks/time_to_quality.py --a configs/paper.yaml --b configs/default.yaml --budget 20
  python benchmarks/time_to_quality.py --a configs/paper.yaml --budget-a 20 --b configs/default.yaml \
      --budget-b 5
  python benchmarks/time_to_quality.py --a configs/quick.yaml --set-b train.learning_rate=1e-3 \\
      --clips sample --budget 4 --eval-every 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


BMX_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bmx-trees"
BMX_SIZE = (240, 432)
CROSSING_DATA = BMX_DATA.parent / "crossing"
SIDES = ("a", "b", "c")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Examples:\n" + __doc__.split("Examples:\n", 1)[1])
    for side in SIDES:
        parser.add_argument(f"--{side}", action="append", default=[], metavar="YAML",
                            help=f"config file(s) of configuration {side.upper()} (repeatable)")
        parser.add_argument(f"--set-{side}", action="append", default=[], metavar="KEY=VALUE",
                            help=f"override of configuration {side.upper()}")
        parser.add_argument(f"--name-{side}", help=f"label of configuration {side.upper()}")
    parser.add_argument("--clips", nargs="+", default=["sample", "bmx"],
                        choices=["sample", "bmx", "crossing", "crossing-rider", "dog"])
    parser.add_argument("--alone", action="store_true",
                        help="fit configuration A alone (its blend is scored with and without "
                        "the smooth share from the same fit)")
    parser.add_argument("--budget", type=float, default=5.0, help="fit minutes per configuration")
    parser.add_argument("--budget-a", type=float, help="fit minutes of A (default: --budget)")
    parser.add_argument("--budget-b", type=float, help="fit minutes of B (default: --budget)")
    parser.add_argument("--budget-c", type=float, help="fit minutes of C (default: --budget)")
    parser.add_argument("--eval-every", type=float, default=30.0, help="seconds of fit clock")
    parser.add_argument("--eval-at", type=lambda text: sorted(float(v) for v in text.split(",")),
                        metavar="S,S,...", help="evaluate at these seconds of fit clock instead "
                        "(and at the end of the budget); fewer renders on a slow machine")
    parser.add_argument("--slice", type=float, default=15.0,
                        help="seconds each configuration fits before the other takes its turn")
    parser.add_argument("--bmx-frames", type=int, default=30)
    parser.add_argument("--bmx-data", type=Path, default=BMX_DATA,
                        help="the bmx-trees folder (with frames/); default: %(default)s")
    parser.add_argument("--crossing-data", type=Path, default=CROSSING_DATA,
                        help="the crossing folder (with frames/ and masks/); default: %(default)s")
    parser.add_argument("--out", default="runs/time_to_quality")
    parser.add_argument("--save-renders", action="store_true",
                        help="also write OUT/renders_<clip>.npz: the clip, its truth, Telea, the "
                        "flow fill and each contender's last render (for benchmarks/ghosts.py)")
    return parser


@dataclass
class Clip:
    name: str
    frames: np.ndarray  # uint8 [N, H, W, 3] at working resolution
    masks: np.ndarray  # uint8 [N, H, W, 1]
    truth: np.ndarray
    # bool [N, H, W]: the footage's own annotated objects (the rider, the walkers, the dog), so
    # that the hole is also scored off them (scenery some frame may show) and on them (what
    # moves with or under the hole); None for the sample
    objects: np.ndarray | None = None


def _read_frames(folder: Path, count: int | None = None) -> np.ndarray:
    from tfinpaint.io.clip import resize_frames

    return resize_frames(np.stack([cv2.imread(str(p))[..., ::-1]
                                   for p in _frame_paths(folder, count)]), *BMX_SIZE)


def _frame_paths(folder: Path, count: int | None = None) -> list[Path]:
    return (sorted(folder.glob("*.jpg")) + sorted(folder.glob("*.png")))[:count]


def load_clip(name: str, bmx_frames: int, bmx_data: Path = BMX_DATA,
              crossing_data: Path = CROSSING_DATA) -> Clip:
    if name == "sample":
        from tfinpaint.io.sample import make_sample

        sample = make_sample()
        return Clip(name, sample.frames, sample.masks, sample.truth)
    from tfinpaint.evaluation.protocols import fixed_masks, object_masks
    from tfinpaint.io.video import read_masks

    if name in ("crossing-rider", "dog"):  # the paper's object protocol: bmx-trees' masks
        folder = crossing_data if name == "crossing-rider" else bmx_data.parent / "dog-agility"
        truth = _read_frames(folder / "frames")
        rider = read_masks(bmx_data / "masks", len(list((bmx_data / "masks").glob("*.png"))),
                           *BMX_SIZE)
        masks = object_masks(rider, len(truth), *BMX_SIZE)
        label = f"{folder.name} {BMX_SIZE[0]}x{BMX_SIZE[1]} x{len(truth)} under bmx-trees' masks"
    elif name == "crossing":
        folder = crossing_data
        truth = _read_frames(folder / "frames")
        walkers = read_masks(folder / "masks", len(truth), *BMX_SIZE)
        masks = object_masks(walkers, len(truth), *BMX_SIZE, shift=(BMX_SIZE[1] // 18, 0))
        label = f"crossing {BMX_SIZE[0]}x{BMX_SIZE[1]} x{len(truth)} walkers' masks moved"
    else:
        folder = bmx_data
        truth = _read_frames(folder / "frames", bmx_frames)
        masks = fixed_masks(len(truth), *BMX_SIZE)
        label = f"bmx-trees {BMX_SIZE[0]}x{BMX_SIZE[1]} x{len(truth)}"
    names = [p.stem for p in _frame_paths(folder / "frames", len(truth))]
    objects = read_masks(folder / "annotations", len(truth), *BMX_SIZE, names=names)[..., 0] > 0
    return Clip(label, truth * (1 - masks), masks, truth, objects)


@dataclass
class Contender:
    """One configuration fitting one clip, with its own fit clock and curve."""

    name: str
    config: object
    clip: Clip
    budget: float = 300.0  # fit seconds
    fit_seconds: float = 0.0
    next_eval: float = 0.0
    # [seconds, steps, hole PSNR] (+ the mean gate in the hole, with the flow prefill; + the
    # flow keep and the network's own hole PSNR, with a blend layer; + the smooth share and the
    # hole PSNR without it (the keep measured alone), with a `SmoothShare`)
    curve: list = field(default_factory=list)
    gate_probe: object = None
    # the last measurement of generator.flow_keep and smooth_share
    # (`tfinpaint.fitting.blend.BlendChoice`), with "auto"
    keep: object = None

    def build(self):
        import keras

        from tfinpaint.config import uses_flow
        from tfinpaint.fill.render import make_fill_fn
        from tfinpaint.fitting.device import choose_precision
        from tfinpaint.fitting.loop import build_inpainter

        # The race's budget is the fit's time budget: a schedule that decays over the budget
        # (fitting.schedule.CosineDecayToBudget) ends when the race does.
        self.config.train.time_budget_minutes = self.budget / 60.0
        began = time.perf_counter()
        keras.mixed_precision.set_global_policy(choose_precision(self.config.train.precision))
        keras.utils.set_random_seed(self.config.train.seed)
        self.model = build_inpainter(self.config)
        prefill = self.config.data.prefill
        self.prefilled = None
        if uses_flow(prefill):  # as train does: the real holes' fill
            from tfinpaint.fill.render import native_prefill

            self.prefilled = native_prefill(prefill, self.clip.frames, self.clip.masks,
                                            self.config.flow)
        self.sampler = self.make_sampler()
        self.fill = make_fill_fn(self.model.generator, prefill)
        self.fit_seconds += time.perf_counter() - began

    def make_sampler(self):
        """The fit's sampler, as `train` builds it (a study may hold other pixels out)."""
        from tfinpaint.fitting.loop import training_sampler

        return training_sampler(self.config, self.clip.frames, self.clip.masks)

    @property
    def steps(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def fit_for(self, seconds: float, budget: float) -> None:
        import keras

        from tfinpaint.fitting.schedule import FitClock

        deadline = min(self.fit_seconds + seconds, budget, self.next_eval)
        train = self.config.train
        contender = self

        class Stop(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if contender.fit_seconds + time.perf_counter() - began >= deadline:
                    self.model.stop_training = True

        remaining = train.steps - self.steps
        if remaining <= 0:
            self.fit_seconds = budget  # the schedule is done: its curve stays flat from here
            return
        dataset = self.sampler.dataset(batch_size=train.batch_size, seed=train.seed,
                                       start_step=self.steps)
        spe = train.steps_per_execution
        self.model.fit_seconds.assign(self.fit_seconds)  # FitClock counts on from here
        began = time.perf_counter()
        self.model.fit(dataset, epochs=1, steps_per_epoch=-(-remaining // spe) * spe,
                       callbacks=[FitClock(), Stop()], verbose=0, shuffle=False)
        self.fit_seconds += time.perf_counter() - began

    def render(self) -> np.ndarray:
        import tensorflow as tf

        def batch(i):
            inputs = [self.clip.frames[i:i + 4], self.clip.masks[i:i + 4]]
            if self.prefilled is not None:
                inputs.append(self.prefilled[i:i + 4])
            return self.fill(*(tf.constant(part) for part in inputs)).numpy()

        return np.concatenate([batch(i) for i in range(0, len(self.clip.frames), 4)])

    def evaluate(self) -> float:
        """Renders the clip as the fit would now (with "auto" `generator.flow_keep` and
        `smooth_share` measured on held-out training holes first, as `fitting.loop.settle_blend`
        does) and scores the hole. With a `SmoothShare` measured, also renders the result without
        it (the keep measured alone, as before the layer existed): `unsmoothed_filled`."""
        from tfinpaint.evaluation.metrics import psnr
        from tfinpaint.fitting.blend import fixed_shares, held_out, set_blend
        from tfinpaint.model.generator import flow_keep_layer, smooth_share_layer

        generator, settings = self.model.generator, self.config.generator
        blended = set_blend(generator, keep=0.0, share=0.0)  # False without a blend layer
        self.network_filled = self.render()  # the network alone (its blend layers at 0)
        self.unsmoothed_filled = None
        if blended:
            fixed = fixed_shares(generator, settings)
            keep, share = fixed["keep"], fixed["share"]
            if None in (keep, share):
                held = held_out(generator, self.sampler, self.config.data.prefill,
                                self.config.train.seed, on=self.config.data.held_out)
                self.keep = held.best(**fixed)
                keep, share = self.keep.keep, self.keep.smooth
                if smooth_share_layer(generator) is not None and fixed["share"] is None:
                    set_blend(generator, keep=held.best(keep=fixed["keep"], share=0.0).keep)
                    self.unsmoothed_filled = self.render()
            set_blend(generator, keep=keep, share=share)
        self.filled = self.render() if blended else self.network_filled
        score = psnr(self.filled, self.clip.truth, self.clip.masks)
        self.curve.append([round(self.fit_seconds, 1), self.steps, round(score, 3)]
                          + ([] if self.prefilled is None else [self.gate_in_hole()])
                          + ([] if not blended else [
                              float(flow_keep_layer(generator).keep.numpy())
                              if flow_keep_layer(generator) is not None else 0.0,
                              round(psnr(self.network_filled, self.clip.truth, self.clip.masks), 3)])
                          + ([] if smooth_share_layer(generator) is None else [
                              float(smooth_share_layer(generator).share.numpy()),
                              None if self.unsmoothed_filled is None else round(psnr(
                                  self.unsmoothed_filled, self.clip.truth, self.clip.masks), 3)]))
        return score

    def gate_in_hole(self) -> float | None:
        """The mean gate of the last stage over the real holes: how much of the flow fill the
        network keeps (1: all of it); None without a gate."""
        import keras
        import tensorflow as tf

        from tfinpaint.model.generator import (EDGE_PAD_MODE, MULTIPLE, network_input,
                                               pad_to_multiple, to_signed)

        settings = self.config.generator
        if not settings.prefill_gate:
            return None
        if self.gate_probe is None:  # the generator's own gate layer, built once
            generator = self.model.generator
            stage = "coarse" if settings.arch == "base" else "refine"
            self.gate_probe = keras.Model(generator.inputs,
                                          generator.get_layer(f"{stage}_gate_output").output)
        total = inside = 0.0
        for i in range(0, len(self.clip.frames), 4):
            hole = tf.cast(self.clip.masks[i:i + 4] > 0, tf.float32)
            inputs = network_input(to_signed(self.clip.frames[i:i + 4]), hole, None,
                                   self.config.data.prefill, to_signed(self.prefilled[i:i + 4]))
            padded, (height, width) = pad_to_multiple(inputs, MULTIPLE, mode=EDGE_PAD_MODE)
            gate = self.gate_probe(padded)[:, :height, :width]
            total += float(tf.reduce_sum(gate * hole))
            inside += float(tf.reduce_sum(hole))
        return round(total / max(inside, 1.0), 3)


def race(contenders: list[Contender], *, eval_every: float, slice_seconds: float,
         eval_at: list[float] | None = None):
    """Alternates the contenders in slices of fit time until each has spent its own budget
    (while both fit they share the load; a longer budget goes on alone after the other's ends)."""
    def next_eval(after: float) -> float:
        if eval_at is None:
            return after + eval_every
        return next((t for t in eval_at if t > after + 1e-6), float("inf"))

    for contender in contenders:
        contender.build()
        contender.evaluate()
        contender.next_eval = next_eval(0.0)
    while any(c.fit_seconds < c.budget for c in contenders):
        for contender in contenders:
            budget = contender.budget
            if contender.fit_seconds >= budget:
                continue
            contender.fit_for(slice_seconds, budget)
            if contender.fit_seconds >= min(contender.next_eval, budget):
                score = contender.evaluate()
                contender.next_eval = next_eval(contender.next_eval)
                extra = contender.curve[-1][3:]
                print(f"{contender.clip.name} {contender.name}: {contender.fit_seconds:.0f} s "
                      f"step {contender.steps} hole PSNR {score:.2f} dB"
                      + (f" gate {extra[0]}" if extra and extra[0] is not None else "")
                      + (f" keep {extra[1]:.2f} (network alone {extra[2]:.2f} dB)"
                         if len(extra) > 1 else "")
                      + (f" smooth {extra[3]:.2f}" + (f" (without it {extra[4]:.2f} dB)"
                                                      if extra[4] is not None else "")
                         if len(extra) > 3 else ""),
                      file=sys.stderr, flush=True)


def plot(results: dict, path: Path) -> None:
    """PSNR vs seconds, one panel per clip, drawn with OpenCV (no plotting library needed)."""
    panel_w, panel_h, margin = 560, 380, 60
    colours = [(40, 90, 220), (220, 120, 30), (60, 160, 60)]  # BGR
    canvas = np.full((panel_h + 2 * margin, len(results) * (panel_w + margin) + margin, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for index, (clip, entry) in enumerate(results.items()):
        x0, y0 = margin + index * (panel_w + margin), margin
        curves = entry["curves"]
        values = [p[2] for c in curves.values() for p in c] + [entry["telea_psnr"]]
        low, high = np.floor(min(values)) - 0.5, np.ceil(max(values)) + 0.5
        t_max = max(p[0] for c in curves.values() for p in c) or 1.0

        def at(seconds, db):
            return (int(x0 + seconds / t_max * panel_w), int(y0 + panel_h - (db - low) / (high - low) * panel_h))

        cv2.rectangle(canvas, (x0, y0), (x0 + panel_w, y0 + panel_h), (0, 0, 0), 1)
        for db in np.arange(np.ceil(low), high, 1.0):
            y = at(0, db)[1]
            cv2.line(canvas, (x0, y), (x0 + panel_w, y), (225, 225, 225), 1)
            cv2.putText(canvas, f"{db:.0f}", (x0 - 30, y + 4), font, 0.4, (0, 0, 0), 1)
        for seconds in np.linspace(0, t_max, 6):
            x = at(seconds, low)[0]
            cv2.putText(canvas, f"{seconds:.0f}s", (x - 12, y0 + panel_h + 18), font, 0.4, (0, 0, 0), 1)
        telea_y = at(0, entry["telea_psnr"])[1]
        for x in range(x0, x0 + panel_w, 12):
            cv2.line(canvas, (x, telea_y), (min(x + 6, x0 + panel_w), telea_y), (90, 90, 90), 1)
        cv2.putText(canvas, f"Telea {entry['telea_psnr']:.1f} dB", (x0 + 5, telea_y - 5), font, 0.4,
                    (90, 90, 90), 1)
        for line, (name, curve) in enumerate(curves.items()):
            points = np.array([at(p[0], p[2]) for p in curve], np.int32)
            cv2.polylines(canvas, [points], False, colours[line % 3], 2, cv2.LINE_AA)
            for point in points:
                cv2.circle(canvas, tuple(int(v) for v in point), 3, colours[line % 3], -1)
            cv2.putText(canvas, name, (x0 + 10, y0 + 20 + 18 * line), font, 0.5, colours[line % 3], 1)
        cv2.putText(canvas, f"{clip}: hole PSNR (dB) vs fit seconds", (x0, y0 - 15), font, 0.5,
                    (0, 0, 0), 1)
    cv2.imwrite(str(path), canvas)


def _scores(filled: np.ndarray, clip: Clip) -> dict:
    from tfinpaint.evaluation.metrics import score

    scores = score(filled, clip.truth, clip.masks)
    scores = {key: round(float(scores[key]), 4) for key in ("psnr_hole", "ssim_hole",
                                                          "warping_error")}
    return scores | _object_split(filled, clip)


def _object_split(filled: np.ndarray, clip: Clip) -> dict:
    """Hole PSNR off and on the clip's annotated objects (empty without annotations)."""
    from tfinpaint.evaluation.metrics import psnr

    if clip.objects is None:
        return {}
    hole = clip.masks[..., 0] > 0
    return {f"psnr_hole_{side}_objects": round(psnr(filled, clip.truth, where[..., None]), 4)
            for side, where in (("off", hole & ~clip.objects), ("on", hole & clip.objects))
            if where.any()}


def save_renders(path: Path, clip: Clip, telea: np.ndarray, contenders: list) -> None:
    """The clip (frames, masks, truth, its annotated `objects` where it has them), Telea's fill,
    the flow fill (where a contender has one) and each contender's last render as
    `fill:<name>`, uint8 at the working resolution."""
    prefilled = next((c.prefilled for c in contenders if c.prefilled is not None), None)
    arrays = {"frames": clip.frames, "masks": clip.masks, "truth": clip.truth, "telea": telea}
    if clip.objects is not None:
        arrays["objects"] = clip.objects
    if prefilled is not None:
        arrays["flow fill"] = prefilled
    arrays |= {f"fill:{c.name}": c.filled for c in contenders}
    arrays |= {f"fill:{c.name} unsmoothed": c.unsmoothed_filled for c in contenders
               if c.unsmoothed_filled is not None}
    np.savez_compressed(path, **{key: np.asarray(value, np.uint8) for key, value in arrays.items()})


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tfinpaint.config import load_config, to_dict
    from tfinpaint.evaluation.metrics import psnr, telea_baseline

    sides = ["a"] if args.alone else [
        side for side in SIDES if side != "c" or args.c or args.set_c or args.name_c]
    names = [getattr(args, f"name_{side}") or "+".join(
        [Path(p).stem for p in getattr(args, side)] + getattr(args, f"set_{side}")) or "defaults"
        for side in sides]
    if len(set(names)) < len(names):
        names = [f"{side.upper()} {name}" for side, name in zip(sides, names)]
    configs = [load_config(getattr(args, side), getattr(args, f"set_{side}")) for side in sides]
    budgets = [args.budget if getattr(args, f"budget_{side}") is None
               else getattr(args, f"budget_{side}") for side in sides]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for clip_name in args.clips:
        clip = load_clip(clip_name, args.bmx_frames, args.bmx_data, args.crossing_data)
        contenders = [Contender(name, config, clip, budget=minutes * 60.0)
                      for name, config, minutes in zip(names, configs, budgets)]
        race(contenders, eval_every=args.eval_every, slice_seconds=args.slice,
             eval_at=args.eval_at)
        telea = telea_baseline(clip.frames, clip.masks)
        results[clip.name] = {
            "telea_psnr": round(psnr(telea, clip.truth, clip.masks), 3),
            # the share of the hole's pixels on the footage's annotated objects
            "hole_on_objects": None if clip.objects is None else round(float(
                clip.objects[clip.masks[..., 0] > 0].mean()), 3),
            # the flow prefill alone (propagation only), where a contender uses one
            "propagation_psnr": next((round(psnr(c.prefilled, clip.truth, clip.masks), 3)
                                      for c in contenders if c.prefilled is not None), None),
            "curves": {c.name: c.curve for c in contenders},
            # hole PSNR, hole SSIM and warping error of each contender's last render and prefill
            "final": {c.name: _scores(c.filled, clip) for c in contenders}
            | {"telea": _scores(telea, clip)},
            # the same of the network alone, where a flow keep blended the last render
            "network_alone": {c.name: _scores(c.network_filled, clip) for c in contenders
                              if c.network_filled is not c.filled},
            # the same without the smooth share (the flow keep measured alone: the default
            # before `generator.smooth_share`), where one was measured
            "unsmoothed": {c.name: _scores(c.unsmoothed_filled, clip) for c in contenders
                           if c.unsmoothed_filled is not None},
            "prefill": {c.name: _scores(c.prefilled, clip) for c in contenders
                        if c.prefilled is not None},
        }
        if args.save_renders:
            save_renders(out / f"renders_{clip_name}.npz", clip, telea, contenders)
        (out / "time_to_quality.json").write_text(json.dumps({
            "budget_minutes": dict(zip(names, budgets)), "eval_every_seconds": args.eval_every,
            "configs": {name: to_dict(config) for name, config in zip(names, configs)},
            "results": results}, indent=1))
        plot(results, out / "time_to_quality.png")
    print(json.dumps({clip: {name: curve[-1] for name, curve in entry["curves"].items()}
                      | {"telea": entry["telea_psnr"], "propagation": entry["propagation_psnr"],
                         "final": entry["final"], "unsmoothed": entry["unsmoothed"],
                         "prefill": entry["prefill"]}
                      for clip, entry in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
