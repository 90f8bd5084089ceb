"""User errors: a problem the user can fix is one line on stderr and exit status 1 (2 for a
usage error).

Every layer raises `SeqlabError` for bad input (what is wrong, in which file/sample/key, what
to do); every entry point (the `seqlab` command, the workflow's scripts) runs its `main` under
`run_cli`, which prints the line without a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class SeqlabError(Exception):
    """A problem the user can fix: printed as one line (what, where, what to do), exit 1."""


class ConfigError(SeqlabError):
    """The config is invalid; str(e) holds one line per problem (the dotted key or file:line)."""


class UsageError(SeqlabError):
    """A command given something that is not there (an unknown name, a missing file it was
    pointed at): one line, exit 2, the status of a command-line usage error."""


def run_cli(main: Callable[[], object]) -> None:
    """Run `main`; a SeqlabError prints `error: <message>` (no traceback) and exits 1, or 2
    for a UsageError."""
    try:
        main()
    except SeqlabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, UsageError) else 1)
