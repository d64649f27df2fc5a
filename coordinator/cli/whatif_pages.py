"""Every page of a coordinator's what-if, put back together as the unpaged answer.

The first page holds everything but the lists of host labels and of VMs, which later
pages continue (see `WhatIfResponse` in the proto); merging them in order gives the
unpaged answer. Each page is cut from a what-if computed afresh: a page whose
`snapshot` differs from the first page's means the cluster, its VMs or its pins changed
while paging, and the reading starts again, a few times at most, so the answer never
mixes two states of the cluster.
"""

from __future__ import annotations

import argparse
from typing import Any

from cpucompat.agent.cli.common import EXIT_FAILURE, CliError

from .client import call
from .consistent_pages import read_consistently


def call_whatif(args: argparse.Namespace, stub: Any, request: Any) -> Any:
    """The whole `WhatIfResponse` over every page of ``request``."""

    def read() -> Any | None:
        request.page_token = ""
        return _pages(args, stub, request)

    return read_consistently(read, "the cluster (its what-if)")


def _pages(args: argparse.Namespace, stub: Any, request: Any) -> Any | None:
    """The merged answer, or None when it changed between pages."""
    answer = call(args, stub.WhatIf, request)
    seen: set[str] = set()
    token = answer.next_page_token
    while token:
        if token in seen:
            raise CliError("the coordinator repeated a page token; what-if stopped", EXIT_FAILURE)
        seen.add(token)
        request.page_token = token
        page = call(args, stub.WhatIf, request)
        if page.snapshot != answer.snapshot:
            return None
        answer.MergeFrom(page)
        token = page.next_page_token
    answer.next_page_token = ""
    return answer
