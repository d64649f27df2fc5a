"""Every page of a coordinator's audit, put back together as one report.

The first page holds the summary; later pages only hosts, losses, group members and
the host pairs whose source they hold (see `AuditResponse` in the proto). A later page whose distinct profiles differ from the
first page's means the cluster's processors changed while paging: the listing starts
again, a few times at most, so the report never mixes two states of the cluster.
"""

from __future__ import annotations

import argparse
from typing import Any

from cpucompat.agent.cli.common import EXIT_FAILURE, CliError

from .client import call
from .consistent_pages import read_consistently


def call_audit(args: argparse.Namespace, stub: Any, request: Any) -> Any:
    """The whole `AuditReport` over every page of ``request``."""

    def read() -> Any | None:
        request.page_token = ""
        return _pages(args, stub, request)

    return read_consistently(read, "the cluster's processors (its audit)")


def _pages(args: argparse.Namespace, stub: Any, request: Any) -> Any | None:
    """The merged report, or None when the profiles changed between pages."""
    response = call(args, stub.Audit, request)
    report = response.report
    profiles = [p.fingerprint for p in report.profiles]
    seen: set[str] = set()
    token = response.next_page_token
    while token:
        if token in seen:
            raise CliError("the coordinator repeated a page token; audit stopped", EXIT_FAILURE)
        seen.add(token)
        request.page_token = token
        response = call(args, stub.Audit, request)
        page = response.report
        if [p.fingerprint for p in page.profiles] != profiles or len(page.groups) != len(
            report.groups
        ):
            return None
        report.hosts.extend(page.hosts)
        report.losses.extend(page.losses)
        report.pairs.extend(page.pairs)
        report.blocking_pairs.extend(page.blocking_pairs)
        for group, more in zip(report.groups, page.groups, strict=True):
            group.hosts.extend(more.hosts)
        token = response.next_page_token
    for group in report.groups:
        names = sorted(group.hosts)
        del group.hosts[:]
        group.hosts.extend(names)
    return report
