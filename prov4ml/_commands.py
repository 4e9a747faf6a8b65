"""What every command-line entry point shares: exit codes, and one error line instead of a traceback.

Every CLI is ``main(argv=None) -> int`` over a plain library function; ``run``
turns the errors prov4ml raises on purpose into ONE line on stderr and an exit
status, never a traceback:

====  ==========================================================
code  meaning
====  ==========================================================
0     done; the output path is printed on stdout
1     bad input: a missing, empty, truncated or non-PROV file, an
      unknown format, an empty directory, an unwritable output
2     bad command line (argparse's own status)
3     a dependency is missing: a Python extra or Graphviz ``dot``
====  ==========================================================

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Optional

from .exceptions import MissingDependencyError, Prov4MLError

__all__ = ["EXIT_OK", "EXIT_INPUT", "EXIT_USAGE", "EXIT_DEPENDENCY", "parser", "run"]

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_DEPENDENCY = 3


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"python -m {prog}", description=description)


def run(prog: str, action: Callable[[], Optional[Path]]) -> int:
    """Call ``action``; print its output path, or one error line, and return the exit status."""
    try:
        out = action()
    except MissingDependencyError as exc:
        return _fail(prog, exc, EXIT_DEPENDENCY)
    except Prov4MLError as exc:
        return _fail(prog, exc, EXIT_INPUT)
    except OSError as exc:  # e.g. a read-only output directory
        return _fail(prog, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_INPUT)
    except KeyboardInterrupt:
        return _fail(prog, "interrupted; nothing was written", 130)
    if out is not None:
        print(out)
    return EXIT_OK


def _fail(prog: str, message: object, code: int) -> int:
    text = " ".join(str(message).split())  # one line, whatever the message held
    print(f"{prog}: error: {text}", file=sys.stderr)
    return code

