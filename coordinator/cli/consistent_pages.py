"""A listing read page by page that must come from one state of the cluster.

`audit_pages` and `whatif_pages` merge the pages of one answer; when a later page shows
that the cluster changed meanwhile, the listing starts again, a few times at most, so
the answer never mixes two states.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cpucompat.agent.cli.common import EXIT_FAILURE, CliError

ATTEMPTS = 3


def read_consistently(read: Callable[[], Any | None], changing: str) -> Any:
    """``read()`` (the merged pages, None when the cluster changed between them) until it
    gives an answer; ``changing`` names what kept changing in the error."""
    for _ in range(ATTEMPTS):
        answer = read()
        if answer is not None:
            return answer
    raise CliError(
        f"{changing} kept changing while it was read page by page; run the command again",
        EXIT_FAILURE,
    )
