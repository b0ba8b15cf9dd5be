"""Processes that end cleanly: SIGTERM runs the same clean-up as Ctrl-C, and workers die with their parent.

A ``kill`` (SIGTERM) or a closed terminal (SIGHUP) would end Python without running ``finally`` blocks,
leaving temporary folders and worker processes behind. :func:`terminate_as_exception` turns them into
:class:`Terminated`, an exception, so that every clean-up runs; :func:`die_with_parent` makes a worker
process end when the process that started it ends, even by ``kill -9``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Terminated", "die_with_parent", "terminate_as_exception"]

_PR_SET_PDEATHSIG = 1


class Terminated(BaseException):
    """The process was asked to end (SIGTERM or SIGHUP); raised so that clean-ups run.

    Parameters
    ----------
    signum : int
        The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Within this block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    Outside the main thread (where Python cannot set handlers) the block does nothing. A forked child
    that inherits the handler ends as the signal would have ended it, without running the parent's
    clean-ups.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a forked worker: end as the default action would
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Terminated(signum)

    wanted = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, handler) for s in wanted}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def die_with_parent(parent: int | None = None) -> None:
    """Make the calling process receive SIGKILL when its parent ends (Linux; elsewhere a check at start).

    Used as the initializer of worker pools, so that workers never outlive the process that started
    them, however it ends.

    Parameters
    ----------
    parent : int, optional
        The parent's process id, checked after setting the signal (the parent may have ended already).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)
