"""Progress messages on standard error for steps that take more than a moment; silent with ``--quiet``."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator


class Progress:
    """Print ``step... done (2.3 s)`` lines to standard error, unless quiet."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        start = time.perf_counter()
        if not self.quiet:
            print(f"- {text} ...", end="", file=sys.stderr, flush=True)
        try:
            yield
        except BaseException:
            if not self.quiet:
                print(" failed", file=sys.stderr, flush=True)
            raise
        if not self.quiet:
            print(f" done ({time.perf_counter() - start:.1f} s)", file=sys.stderr, flush=True)
