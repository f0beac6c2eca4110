"""The command line: `python -m skyreels_demo generate | continue | film | films | sweep | export |
resume | runs | balance | local-api`.

Status goes to stderr, results to stdout, and the exit code says how it ended:
0 done, 2 bad input (nothing was sent), 3 API or auth error, 4 the task failed,
5 gave up waiting (the task is recorded: resume it). Each command's arguments are declared
beside its handler (one_run.py, films.py, many.py, records.py); this module only assembles them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from skyreels_demo.cli import films, many, one_run, records
from skyreels_demo.cli.lines import EXIT_BAD_INPUT, StatusLines
from skyreels_demo.config import Settings
from skyreels_demo.errors import StudioError
from skyreels_demo.models import SKYREELS_V1, ModelSpec


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, when it has one worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def build_parser(model: ModelSpec) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m skyreels_demo",
        description=f"{model.title} on WaveSpeedAI, from the command line.",
        formatter_class=_Help,
    )
    parser.set_defaults(model=model)
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return commands.add_parser(name, formatter_class=_Help, **kwargs)

    for command in (one_run, films, many, records):
        command.register(add, model)
    return parser


def main(argv: Sequence[str] | None = None, model: ModelSpec = SKYREELS_V1) -> int:
    """The command line for `model`'s videos (SkyReels V1 unless a caller wires another)."""
    args = build_parser(model).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    status = StatusLines(sys.stderr)
    try:
        settings = Settings.from_env()
        return args.handler(args, settings, status)
    except StudioError as exc:
        status.say(f"error: {exc.sentence}")
        return exc.exit_code
    except ValueError as exc:  # a malformed environment variable
        status.say(f"error: {exc}")
        return EXIT_BAD_INPUT
