"""The ``phm-audit`` command line: parses arguments, calls the stages, sets exit codes.

Every command lives in this package (``_synth``: generate, scenarios, describe, data-dictionary;
``_models``: models, score; ``_audit``: audit; ``_demo``: demo; ``_teach``: teach). The stages
(:mod:`phm_audit.synth`, :mod:`phm_audit.models`, :mod:`phm_audit.audit`, :mod:`phm_audit.report`)
never import it.

Exit codes: 0 done, 1 internal error, 2 bad input, 3 a failed gate (``--fail-on``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from phm_audit._version import __version__
from phm_audit.exceptions import PhmAuditError, PhmInputError

__all__ = ["EXIT_BAD_INPUT", "EXIT_GATE", "EXIT_INTERNAL", "EXIT_OK", "main"]

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_GATE = 0, 1, 2, 3

# Each module adds its subcommands with ``register(subparsers)``; ``func(args) -> int`` runs one.
_COMMAND_MODULES = (
    "phm_audit.cli._synth",
    "phm_audit.cli._models",
    "phm_audit.cli._audit",
    "phm_audit.cli._demo",
    "phm_audit.cli._teach",
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit code 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``phm-audit``."""
    parser = _Parser(
        prog="phm-audit",
        description="Audit population-health risk-stratification models for fairness-related harm.",
    )
    parser.add_argument("--version", action="version", version=f"phm-audit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``phm-audit`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name.

    Returns
    -------
    int
        0 done, 1 internal error, 2 bad input, 3 failed gate.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_BAD_INPUT
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    from phm_audit._process import Terminated, terminate_as_exception

    try:
        with terminate_as_exception():  # a kill (SIGTERM) runs the same clean-ups as Ctrl-C
            return int(args.func(args))
    except Terminated as exc:
        print(f"phm-audit: {exc}; no partial report was left", file=sys.stderr)
        return 128 + exc.signum
    except PhmInputError as exc:
        print(f"phm-audit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PhmAuditError as exc:
        print(f"phm-audit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("phm-audit: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error: one line, not a traceback, and exit 1
        print(
            f"phm-audit {args.command}: internal error: {type(exc).__name__}: {exc}. "
            "Please report it with the command you ran.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
