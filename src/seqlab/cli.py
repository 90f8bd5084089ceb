"""Shared entry-point wrapper: user errors become one line on stderr and exit status 1."""

from __future__ import annotations

import sys
from collections.abc import Callable

from seqlab.io import SeqlabError


def run_cli(main: Callable[[], object]) -> None:
    """Run `main`; a SeqlabError prints `error: <message>` (no traceback) and exits 1."""
    try:
        main()
    except SeqlabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
