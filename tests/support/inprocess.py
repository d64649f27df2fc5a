"""A real coordinator served in this process on a loopback port, with its SQLite file.

Integration tests use it instead of a daemon subprocess: the same `Coordinator` and
`build_server` the `cpucompat coordinator` command runs, stopped at the end of the test.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.server import Coordinator, CoordinatorConfig, build_server
from cpucompat.v1 import coordinator_service_pb2 as coordinator_pb2
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from cpucompat.v1 import profile_pb2

from .paths import DEV_DUMP, FIXTURES

MIXED = [
    FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt",
    FIXTURES / "processors" / "amd-zen3-x3d-l3-edited.cpuid-r.txt",
    FIXTURES / "processors" / "intel-skylake-leaf2-edited.cpuid-r.txt",
]
"""Three project fixtures, two AMD and one Intel: a mixed cluster whatever the host."""


class Running:
    """A coordinator on 127.0.0.1:0 with stubs for its registry and query services."""

    def __init__(self, tmp_path: Path, **config: object) -> None:
        self.db = tmp_path / "c.db"
        self.coordinator = Coordinator(
            CoordinatorConfig(db_path=self.db, listen="127.0.0.1:0", **config)
        )  # type: ignore[arg-type]
        self.server, port = build_server(self.coordinator)
        self.server.start()
        self.address = f"127.0.0.1:{port}"
        self.channel = grpc.insecure_channel(self.address)
        self.registry = pb_grpc.RegistryServiceStub(self.channel)
        self.query = pb_grpc.QueryServiceStub(self.channel)

    def stored(self) -> tuple[int, int, int]:
        with self.coordinator.store.reading() as db:
            return tuple(  # type: ignore[return-value]
                db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("hosts", "profiles", "events")
            )

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)
        self.coordinator.close()


def dev_raw(source: str = "cpuid-instruction") -> profile_pb2.RawCapture:
    """The development dump's leaves as sent on the wire, labelled with ``source``."""
    raw = capture_to_proto(load_dump(DEV_DUMP))
    raw.source = source
    return raw


def report_mixed(running: Running, host: str, n: int, cluster: str = "big") -> None:
    """``host`` reports the ``n``-th of `MIXED` (in turn) into ``cluster`` over gRPC."""
    raw = capture_to_proto(load_dump(MIXED[n % len(MIXED)]))
    running.registry.ReportProfile(
        coordinator_pb2.ReportProfileRequest(host_id=host, cluster=cluster, raw=raw), timeout=30
    )
