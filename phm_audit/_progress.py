"""Progress on standard error for steps that take more than a moment; silent with ``--quiet``.

Each step prints ``- text ... done (2.3 s)``. A step that knows how far it has gone (the audit, one
model at a time) also draws a bar, ``- text [########------------] 4/9 actuarial_cost``, when
standard error is a terminal; in a log file only the closing line is written.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

#: ``tick(done, total, label)``: how far a step has gone.
Tick = Callable[[int, int, str], None]

_BAR_WIDTH = 24


class Progress:
    """Print ``step ... done (2.3 s)`` lines to standard error, unless quiet, with a bar on a terminal."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[Tick]:
        """Time one step; the context gives a ``tick(done, total, label)`` for steps that count."""
        start = time.perf_counter()
        live = not self.quiet and sys.stderr.isatty()
        drawn = [0]

        def tick(done: int, total: int, label: str = "") -> None:
            if not live:
                return
            if total <= 0:  # a step that cannot count ahead (an engine's queries): how many so far, and the last
                line = f"\r- {text} ... {done} {label}"
            else:
                filled = round(_BAR_WIDTH * min(done, total) / total)
                line = f"\r- {text} [{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {done}/{total} {label}"
            print(line.ljust(drawn[0]), end="", file=sys.stderr, flush=True)
            drawn[0] = len(line)

        if not self.quiet:
            print(f"- {text} ...", end="", file=sys.stderr, flush=True)
        try:
            yield tick
        except BaseException:
            if not self.quiet:
                print(" failed", file=sys.stderr, flush=True)
            raise
        if not self.quiet:
            closing = f" done ({time.perf_counter() - start:.1f} s)"
            if drawn[0]:
                closing = f"\r- {text} ...{closing}".ljust(drawn[0])
            print(closing, file=sys.stderr, flush=True)
