"""`main`: parse, run the command, and turn every failure a user can act on into one line and an exit
code (0 ok, 1 a handled error, 2 a usage error), never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from contexta.cli._output import CommandError, Output, UsageError
from contexta.cli._parser import build_parser
from contexta.cli._terminal import terminal_safe
from contexta.errors import ContextaError

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_FAILED


def _os_error_text(error: OSError) -> str:
    reason = error.strerror or str(error)
    return f"{reason}: {error.filename}" if error.filename else reason


def _quiet_stdout() -> None:
    """After the reader of a pipe went away (`contexta runs | head`): send what is left to /dev/null,
    so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file (a test's capture)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run `contexta` with `argv` (default: the process's arguments) and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # argparse: --help, --version (0) or a usage error (2)
        return _exit_code(exit_request.code)
    output = Output.for_terminal(sys.stdout, sys.stderr)
    try:
        code: int = args.handler(args, output)
        output.flush()
        return code
    except UsageError as error:
        try:
            args.parser.error(terminal_safe(str(error)))
        except SystemExit as exit_request:
            return _exit_code(exit_request.code)
        return EXIT_USAGE
    except CommandError as error:
        output.error(str(error))
    except ContextaError as error:
        output.error(error.message)
    except BrokenPipeError:
        _quiet_stdout()
    except OSError as error:
        output.error(_os_error_text(error))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return EXIT_FAILED
