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


def read_consistently(
    fetch: Callable[[Any], Any],
    request: Any,
    merge: Callable[[Any, Any], bool],
    what: str,
    changing: str,
) -> Any:
    """Every page of ``request`` (``fetch`` asks for one), merged into the first by
    ``merge(first, page)``, which says False when the cluster changed between them: the
    listing then starts again. ``what`` and ``changing`` name the listing in errors."""
    for _ in range(ATTEMPTS):
        request.page_token = ""
        first = fetch(request)
        if _merged_rest(fetch, request, first, merge, what):
            return first
    raise CliError(
        f"{changing} kept changing while it was read page by page; run the command again",
        EXIT_FAILURE,
    )


def _merged_rest(
    fetch: Callable[[Any], Any],
    request: Any,
    first: Any,
    merge: Callable[[Any, Any], bool],
    what: str,
) -> bool:
    seen: set[str] = set()
    token = first.next_page_token
    while token:
        if token in seen:
            raise CliError(f"the coordinator repeated a page token; {what} stopped", EXIT_FAILURE)
        seen.add(token)
        request.page_token = token
        page = fetch(request)
        if not merge(first, page):
            return False
        token = page.next_page_token
    return True
