"""The agent's gRPC side: AgentService and health, built by `build_agent_server`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cpucompat.v1 import agent_service_pb2 as pb
from cpucompat.v1 import agent_service_pb2_grpc as pb_grpc

from ..microarchitecture import of_profile
from ..tls import ReloadableServerTls, TlsFiles, serves_tls
from ..wire import capture_to_proto, profile_to_proto
from .state import ProfileHolder, Snapshot


class AgentServicer(pb_grpc.AgentServiceServicer):
    """Thin: reads the holder, or asks it to probe now."""

    def __init__(
        self,
        holder: ProfileHolder,
        host_id: str,
        cluster: str,
        version: str,
        on_probe: Callable[[Snapshot, Snapshot], None] | None = None,
    ) -> None:
        self.holder = holder
        self.host_id = host_id
        self.cluster = cluster
        self.version = version
        self.on_probe = on_probe

    def GetProfile(
        self, request: pb.GetProfileRequest, context: grpc.ServicerContext
    ) -> pb.GetProfileResponse:
        snap = self.holder.current
        return pb.GetProfileResponse(
            profile=profile_to_proto(snap.profile, of_profile(snap.profile) or ""),
            raw=capture_to_proto(snap.profile.raw, snap.taken_at),
            host_id=self.host_id,
            cluster=self.cluster,
            agent_version=self.version,
        )

    def Probe(self, request: pb.ProbeRequest, context: grpc.ServicerContext) -> pb.ProbeResponse:
        try:
            previous, fresh = self.holder.refresh()
        except Exception as exc:  # a dump file swapped for garbage must not kill the agent
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"probe failed: {exc}")
        if self.on_probe is not None:
            self.on_probe(previous, fresh)
        return pb.ProbeResponse(
            profile=profile_to_proto(fresh.profile),
            raw=capture_to_proto(fresh.profile.raw, fresh.taken_at),
            changed=previous.profile.report_fingerprint != fresh.profile.report_fingerprint,
            previous_fingerprint=previous.profile.fingerprint,
        )


def build_agent_server(
    servicer: AgentServicer,
    listen: str,
    tls: TlsFiles,
    server_tls: ReloadableServerTls | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """The agent's server on ``listen`` (port 0 picks one); returns (server, port, health).

    ``server_tls`` (made from ``tls`` when not given) lets the caller re-read the files.
    """
    # No SO_REUSEPORT: a second agent on a taken port must fail, not share it silently.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8), options=[("grpc.so_reuseport", 0)]
    )
    pb_grpc.add_AgentServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", pb.DESCRIPTOR.services_by_name["AgentService"].full_name):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    # A CA alone is for dialing the coordinator: this port then stays plaintext, which
    # check_listen_address allows on loopback only.
    if serves_tls(tls):
        port = server.add_secure_port(
            listen, (server_tls or ReloadableServerTls(tls)).credentials()
        )
    else:
        port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}: the address is in use or not available")
    return server, port, health_servicer
