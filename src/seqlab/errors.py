"""User errors: a problem the user can fix is one line on stderr and exit status 1.

Every layer raises `SeqlabError` for bad input (what is wrong, in which file/sample/key, what
to do); every entry point (the `seqlab` command, the workflow's scripts) runs its `main` under
`run_cli`, which prints the line without a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class SeqlabError(Exception):
    """A problem the user can fix: printed as one line (what, where, what to do), exit 1."""


def run_cli(main: Callable[[], object]) -> None:
    """Run `main`; a SeqlabError prints `error: <message>` (no traceback) and exits 1."""
    try:
        main()
    except SeqlabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
