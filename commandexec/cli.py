"""The ``commandexec`` command line (also ``python -m commandexec``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import __version__
from .executors import KINDS

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commandexec",
        description="Run registered commands on interchangeable executors.",
    )
    parser.add_argument("--version", action="version", version=f"commandexec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser("demo", help="hash and compress a few files and print a report")
    demo.add_argument("--executor", choices=sorted(KINDS), default="threads", help="executor kind (default: threads)")
    demo.add_argument("--files", type=int, default=12, help="how many files to create (default: 12)")

    sub.add_parser(
        "bench",
        help="measure each executor against its stdlib counterpart",
        add_help=False,  # its own options are parsed by commandexec.bench
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``); return the exit code."""
    import sys

    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["bench"]:
        from . import bench

        return bench.main(args_list[1:])
    args = _parser().parse_args(args_list)
    if args.command == "demo":
        from .demo import run_demo

        if args.files < 1:
            _parser().error("--files must be at least 1")
        return run_demo(args.executor, args.files)
    raise AssertionError(args.command)  # argparse rejects anything else
