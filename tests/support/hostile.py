"""Shared pieces of the hostile-client tests: a real in-process coordinator and its stored rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import profile_pb2

from .paths import DEV_DUMP, DUMPS, OTHER_DUMP

__all__ = ["DEV_DUMP", "DUMPS", "OTHER_DUMP", "raw_of", "refused", "report", "seconds", "snapshot"]
TABLES = (
    "hosts",
    "profiles",
    "events",
    "policies",
    "vms",
    "admissions",
    "leaf_classes",
    "profile_leaf_classes",
)


def raw_of(
    path: Path = DEV_DUMP, source: str = "cpuid-instruction", *, compact: bool = False
) -> profile_pb2.RawCapture:
    """A real processor's leaves from a dump, labelled with ``source`` (in the compact form
    agents report, or the full form older agents send)."""
    raw = capture_to_proto(load_dump(path), compact=compact)
    raw.source = source
    if not source.startswith("replay:"):
        raw.origin = ""
    return raw


def seconds(value: int, nanos: int = 0) -> Duration:
    return Duration(seconds=value, nanos=nanos)


def report(host: str = "h1", cluster: str = "c", **fields: object) -> pb.ReportProfileRequest:
    fields.setdefault("raw", raw_of())
    return pb.ReportProfileRequest(host_id=host, cluster=cluster, **fields)  # type: ignore[arg-type]


def snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every stored row of every table, read through a separate connection."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {
            t: [tuple(row) for row in conn.execute(f"SELECT * FROM {t} ORDER BY 1")] for t in TABLES
        }


def refused(call: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request, timeout=10)  # type: ignore[operator]
    return err.value
