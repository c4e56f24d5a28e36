"""How far a long task has got, on the console: one line redrawn in place on a terminal, plain
lines at an interval anywhere else (a log file, CI).

Fitting (`fitting.monitor.FitProgress`), rendering (`fill.render.render`'s `progress`) and mask propagation
(`masking.spread.PropagationMonitor`) all report through `Progress`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Callable, TextIO

BAR_WIDTH = 20


def clock(seconds: float) -> str:
    """`75.2` -> `"1:15"`, `3725` -> `"1:02:05"`."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Reports one task's progress on `stream` (stderr by default).

    Call `update(count, fraction)` as work gets done: `count` is what the rate counts (steps,
    frames) and `fraction` (0 to 1) how much of the task is done; the first update is the
    reference point of the rate and the time left, so one-off start-up work before it (graph
    tracing) does not distort them. The time left is the fraction still to go at the pace the
    fraction has moved since then, so a fit that ends on a time budget shows the budget's
    remainder, and one that ends on its steps shows the steps left at the measured rate.

    On a terminal the line is redrawn in place (`\\r`) at most every `redraw_seconds` and ends
    with a newline once the fraction reaches 1 or `finish()` is called. Elsewhere a plain line
    is written each time `count` passes a multiple of `every`, and a last one at the end.

    Args:
        label: what is in progress ("fitting", "rendering").
        total: the count that completes the task, where that is known: `update(count)` then
            needs no fraction.
        unit: what `count` counts, for the rate ("step" gives "steps/s").
        every: the interval of the plain lines, in counts (default a quarter of `total`, or 1).
        clock_fn: the time source (seconds); tests pass a fake one.
    """

    def __init__(self, label: str, *, total: int | None = None, unit: str = "step",
                 every: int | None = None, stream: TextIO | None = None,
                 redraw_seconds: float = 0.2, clock_fn: Callable[[], float] = time.monotonic):
        self.label = label
        self.total = total
        self.unit = unit
        self.every = max(1, every or (math.ceil(total / 4) if total else 1))
        self.stream = stream if stream is not None else sys.stderr
        self.live = _is_terminal(self.stream)
        self.redraw_seconds = redraw_seconds
        self.clock = clock_fn
        self.created = clock_fn()
        self.start: tuple[float, int, float] | None = None  # (time, count, fraction) of update 1
        self.last: tuple[int, float, str] | None = None  # (count, fraction, details) of the latest
        self.drawn_at = -math.inf
        self.drawn_width = 0
        self.printed_count: int | None = None
        self.finished = False

    def update(self, count: int, fraction: float | None = None, details: str = "") -> None:
        """Records progress; `fraction` defaults to `count / total`."""
        if self.finished:
            return
        if fraction is None:
            fraction = count / self.total if self.total else 0.0
        fraction = min(max(fraction, 0.0), 1.0)
        now = self.clock()
        if self.start is None:
            self.start = (now, count, fraction)
        self.last = (count, fraction, details)
        if fraction >= 1.0:
            self.finish()
        elif self.live:
            if now - self.drawn_at >= self.redraw_seconds:
                self._draw(now)
        elif self.printed_count is None or count // self.every > self.printed_count // self.every:
            self._print_line(now)

    def finish(self) -> None:
        """Ends the report: the last state, and a newline on a terminal. Idempotent."""
        if self.finished or self.last is None:
            self.finished = True
            return
        self.finished = True
        now = self.clock()
        if self.live:
            self._draw(now)
            self.stream.write("\n")
            self.stream.flush()
        elif self.printed_count != self.last[0]:
            self._print_line(now)

    def text(self, now: float, bar: bool) -> str:
        """The latest update as one line: `fitting  37% [###.....] 1:15 left, 5.41 steps/s |
        <details>` (without the bar in a log; at the end, the time it took)."""
        count, fraction, details = self.last
        start_time, start_count, start_fraction = self.start
        since_start = now - start_time
        head = f"{self.label} {fraction:4.0%}"
        if bar:
            filled = round(fraction * BAR_WIDTH)
            head += " [" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"
        if fraction >= 1.0:
            timing = f"took {clock(now - self.created)}"
        elif fraction > start_fraction and since_start > 0:
            timing = f"{clock((1.0 - fraction) * since_start / (fraction - start_fraction))} left"
        else:
            timing = "--:-- left"
        if count > start_count and since_start > 0:
            timing += f", {(count - start_count) / since_start:.2f} {self.unit}s/s"
        return " | ".join([f"{head} {timing}", details] if details else [f"{head} {timing}"])

    def _draw(self, now: float) -> None:
        line = self.text(now, bar=True)[:_columns(self.stream) - 1]
        padding = " " * max(0, self.drawn_width - len(line))
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self.drawn_at, self.drawn_width = now, len(line)

    def _print_line(self, now: float) -> None:
        self.stream.write(self.text(now, bar=False) + "\n")
        self.stream.flush()
        self.printed_count = self.last[0]


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):  # not a real terminal (a test's fake one)
        return 120
