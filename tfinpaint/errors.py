"""The one error type that user-facing commands turn into a clear line and exit status 2."""

from __future__ import annotations

import errno
import functools
import sys
from typing import Callable, Sequence


class InputError(Exception):
    """Bad user input or an unusable environment: reported as one line, exit status 2.

    The message names the file (or option) and what is wrong with it. Raise it before anything
    is written, so that nothing the user already has is lost.
    """


def cli(main: Callable[[Sequence[str] | None], int | None]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a command's `main(argv)`: `InputError` (and a full disk) become one line and exit 2."""

    @functools.wraps(main)
    def wrapped(argv: Sequence[str] | None = None) -> int:
        try:
            return int(main(argv) or 0)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                print(f"error: {error.strerror.lower()} while writing {error.filename or 'output'}"
                      "; earlier files are intact", file=sys.stderr)
                return 2
            raise
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapped
