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

from .client import call
from .consistent_pages import read_consistently


def call_whatif(args: argparse.Namespace, stub: Any, request: Any) -> Any:
    """The whole `WhatIfResponse` over every page of ``request``."""
    answer = read_consistently(
        lambda r: call(args, stub.WhatIf, r),
        request,
        _merge,
        "what-if",
        "the cluster (its what-if)",
    )
    answer.next_page_token = ""
    return answer


def _merge(answer: Any, page: Any) -> bool:
    """A later page into the first; False when the answer changed between them."""
    if page.snapshot != answer.snapshot:
        return False
    answer.MergeFrom(page)
    return True
