"""Every page of a coordinator's audit, put back together as one report.

The first page holds the summary; later pages only hosts, losses, group members and
the host pairs whose source they hold (see `AuditResponse` in the proto). A later page whose distinct profiles differ from the
first page's means the cluster's processors changed while paging: the listing starts
again, a few times at most, so the report never mixes two states of the cluster.
"""

from __future__ import annotations

import argparse
from typing import Any

from .client import call
from .consistent_pages import read_consistently


def call_audit(args: argparse.Namespace, stub: Any, request: Any) -> Any:
    """The whole `AuditReport` over every page of ``request``."""
    response = read_consistently(
        lambda r: call(args, stub.Audit, r),
        request,
        _merge,
        "audit",
        "the cluster's processors (its audit)",
    )
    report = response.report
    for group in report.groups:
        names = sorted(group.hosts)
        del group.hosts[:]
        group.hosts.extend(names)
    return report


def _merge(first: Any, response: Any) -> bool:
    """A later page into the first; False when the profiles changed between them."""
    report, page = first.report, response.report
    if [p.fingerprint for p in page.profiles] != [p.fingerprint for p in report.profiles] or len(
        page.groups
    ) != len(report.groups):
        return False
    report.hosts.extend(page.hosts)
    report.losses.extend(page.losses)
    report.pairs.extend(page.pairs)
    report.blocking_pairs.extend(page.blocking_pairs)
    for group, more in zip(report.groups, page.groups, strict=True):
        group.hosts.extend(more.hosts)
    return True
