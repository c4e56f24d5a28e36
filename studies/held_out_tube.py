"""Does the blend's held-out measurement see how the network fills pixels it never learnt?

The shares of the flow fill and of the smooth fill (`tfinpaint.fitting.blend`) are measured on
held-out training holes: translated masks over known pixels. Those pixels were the loss's target
in every other step, so the network may have learnt them, where it never saw what the real hole
hides. This study fits one clip with a tube of known pixels held out of the whole fit
(`MaskSampler(held=...)`: no loss reads it, no input or flow field shows it) and compares, on the
real hole, the shares chosen three ways, all from the same fit:

- `holes`: the held-out training holes (the shipped measurement);
- `tube`: the held-out tube, which the fit never learnt, as it never learnt the real hole;
- `pooled`: both sets of pixels at once;
- `oracle`: the best shares for the real hole's truth (the ceiling of any measurement).

`measured_alone` gives each fill's PSNR alone on the tube and on the holes: what each set of
pixels says of the network, the flow fill and the smooth fill.

The tube is the holes moved beside themselves (`tfinpaint.data.masks.beside`) or, `--tube
objects`, moved sideways to where it covers the footage's annotated objects most (annotations:
a study of what the measurement could give, not a way the fit may place it).

    PYTHONPATH=$PWD:$PWD/benchmarks python studies/held_out_tube.py --clip crossing --tube objects
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from time_to_quality import Contender, _object_split, _scores, load_clip, race


def objects_tube(masks: np.ndarray, objects: np.ndarray, step: int = 4,
                 max_overlap: float = 0.1) -> np.ndarray:
    """The holes moved sideways (by a multiple of `step`) to where they cover `objects` most,
    overlapping the holes by at most `max_overlap` of their area; uint8 [N, H, W, 1]."""
    hole = masks[..., 0] != 0
    best, best_cover = None, -1.0
    for dx in range(step, hole.shape[2] - step + 1, step):
        moved = np.roll(hole, dx, axis=2)
        if (moved & hole).sum() > max_overlap * hole.sum():
            continue
        tube = moved & ~hole
        cover = float(objects[tube].mean()) if tube.any() else 0.0
        if cover > best_cover:
            best, best_cover = tube, cover
    return best[..., None].astype(np.uint8)


class TubeContender(Contender):
    """A contender whose fit holds `held` out: its flow fields and its examples treat it as hole."""

    held: np.ndarray | None = None

    def make_sampler(self):
        from tfinpaint.config import uses_flow
        from tfinpaint.data.samplers import MaskSampler, sampling_from
        from tfinpaint.fill.flow import VideoFlow

        assert uses_flow(self.config.data.prefill)
        # one measurement of the flow fields, with the tube as hole, for both samplers
        flow = VideoFlow(self.clip.frames, np.maximum(self.clip.masks, self.held), self.config.flow)
        sampling = sampling_from(self.config.data)
        self.holes_sampler = MaskSampler(self.clip.frames, self.clip.masks, sampling, flow=flow)
        return MaskSampler(self.clip.frames, self.clip.masks, sampling, flow=flow, held=self.held)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="crossing")
    parser.add_argument("--tube", choices=("beside", "objects"), default="beside")
    parser.add_argument("--budget", type=float, default=10.0, help="fit minutes")
    parser.add_argument("--bmx-frames", type=int, default=80)
    parser.add_argument("--out", default="held_out_tube.json")
    parser.add_argument("--full-scores", action="store_true",
                        help="also hole SSIM and warping error of the chosen blends (slow)")
    args = parser.parse_args(argv)

    from tfinpaint.config import load_config
    from tfinpaint.data.masks import beside
    from tfinpaint.evaluation.metrics import psnr
    from tfinpaint.fitting.blend import best_blend, held_out, set_blend

    clip = load_clip(args.clip, args.bmx_frames)
    held = (beside(clip.masks) if args.tube == "beside"
            else objects_tube(clip.masks, clip.objects))
    contender = TubeContender("default", load_config([], []), clip, budget=args.budget * 60.0)
    contender.held = held
    race([contender], eval_every=1e9, slice_seconds=60.0, eval_at=[args.budget * 60.0])
    generator, prefill = contender.model.generator, contender.config.data.prefill
    seed = contender.config.train.seed
    measured = {"tube": held_out(generator, contender.sampler, prefill, seed, on="beside"),
                "holes": held_out(generator, contender.holes_sampler, prefill, seed, on="holes")}
    # both sets of pixels at once (`data.held_out: both`): the tube's unlearnt pixels and the
    # holes on what moves
    measured["pooled"] = measured["tube"] + measured["holes"]
    choices = {name: pixels.best() for name, pixels in measured.items()}
    set_blend(generator, keep=0.0, share=0.0)
    network = contender.render()
    set_blend(generator, keep=0.0, share=1.0)
    smooth = contender.render()
    hole = clip.masks[..., 0] > 0
    choices["oracle"] = best_blend(network, contender.prefilled, clip.truth, hole, smooth=smooth)
    objects = clip.objects if clip.objects is not None else np.zeros_like(hole)
    report = {"clip": clip.name, "tube": args.tube, "steps": contender.steps,
              "hole_on_objects": round(float(objects[hole].mean()), 3),
              "tube_on_objects": round(float(objects[held[..., 0] > 0].mean()), 3),
              "tube_area": round(float(held.mean()), 4), "hole_area": round(float(hole.mean()), 4)}
    # each fill alone where the shares were measured: what each set of pixels says of it
    report["measured_alone"] = {name: {"network": round(choices[name].psnr_network, 3),
                                       "flow": round(choices[name].psnr_flow, 3),
                                       "smooth": choices[name].psnr_smooth and round(
                                           choices[name].psnr_smooth, 3)}
                                for name in ("tube", "holes")}

    def psnrs(filled, clip=clip):  # hole PSNR all / off / on the objects (SSIM, warping: slow)
        return {"psnr_hole": round(psnr(filled, clip.truth, clip.masks), 4)} | _object_split(
            filled, clip)

    for name, choice in choices.items():
        set_blend(generator, keep=choice.keep, share=choice.smooth)
        scores = _scores if args.full_scores and name != "oracle" else psnrs
        report[name] = {"keep": choice.keep, "smooth": choice.smooth,
                        "measured_psnr": round(choice.psnr, 3)} | scores(contender.render(), clip)
    report["network_alone"] = psnrs(network)
    report["flow_fill"] = psnrs(contender.prefilled)
    report["smooth_fill"] = psnrs(smooth)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
