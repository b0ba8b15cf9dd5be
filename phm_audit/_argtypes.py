"""Argument types shared by the ``phm-audit`` subcommands: one place for their wording."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["at_least", "whole_number"]


def whole_number(text: str) -> int:
    """Parse a whole number; ``1_000`` and ``1,000`` are accepted."""
    try:
        return int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number; got '{text}'") from None


def at_least(low: int) -> Callable[[str], int]:
    """An argument type for whole numbers of at least ``low``."""

    def parse(text: str) -> int:
        value = whole_number(text)
        if value < low:
            bound = "0 or more" if low == 0 else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}; got {value}")
        return value

    return parse
