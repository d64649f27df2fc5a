"""The coordinator's services and, beside them, who may call each RPC: one table.

The access interceptor (service/interceptors.py) enforces ACCESS before a servicer
runs; no servicer checks a caller itself. A method of our services that is missing
here is refused (fail closed), and a test holds the table to the .proto, so a new
RPC cannot be served before its rule is written. Without mutual TLS every rule
passes: the coordinator then listens on loopback only (or --insecure was asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cpucompat.v1 import coordinator_service_pb2 as pb

SERVICES: tuple[str, ...] = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name
    for name in (
        "RegistryService",
        "QueryService",
        "DecisionService",
        "PolicyService",
        "VmService",
        "AdmissionService",
        "BaselineService",
    )
)
"""Every service the coordinator serves (health and reflection are gRPC's own)."""


class Caller(Enum):
    """Who may call: what the caller's verified certificate must name."""

    MEMBER = "any certificate the cluster CA signed"
    HOST = "the host itself: a certificate whose CN or a DNS SAN is the request's host id"
    ADMIN = "an administrator: a certificate name given with --admin NAME"


@dataclass(frozen=True)
class Rule:
    caller: Caller
    host_field: str = ""
    """For Caller.HOST: the request field holding the host id the certificate must name."""


ANY_MEMBER = Rule(Caller.MEMBER)
THE_HOST = Rule(Caller.HOST, host_field="host_id")
ADMIN = Rule(Caller.ADMIN)

_R = "/cpucompat.v1.RegistryService/"
_Q = "/cpucompat.v1.QueryService/"
_D = "/cpucompat.v1.DecisionService/"
_P = "/cpucompat.v1.PolicyService/"
_V = "/cpucompat.v1.VmService/"
_A = "/cpucompat.v1.AdmissionService/"
_B = "/cpucompat.v1.BaselineService/"

ACCESS: dict[str, Rule] = {
    # agents, each for its own host only
    _R + "ReportProfile": THE_HOST,
    _R + "Heartbeat": THE_HOST,
    _R + "Leave": THE_HOST,
    # every agent reads and watches its cluster's policy
    _P + "GetPolicy": ANY_MEMBER,
    _P + "ListPolicies": ANY_MEMBER,
    _P + "WatchPolicy": ANY_MEMBER,
    # queries and administration
    _P + "PinPolicy": ADMIN,
    _P + "UnpinPolicy": ADMIN,
    _Q + "ListHosts": ADMIN,
    _Q + "GetHost": ADMIN,
    _Q + "GetHostHistory": ADMIN,
    _Q + "ListEvents": ADMIN,
    _Q + "RemoveHost": ADMIN,
    _Q + "SetMaintenance": ADMIN,
    _D + "Check": ADMIN,
    _D + "Targets": ADMIN,
    _D + "Audit": ADMIN,
    _D + "WhatIf": ADMIN,
    _V + "RegisterVm": ADMIN,
    _V + "ListVms": ADMIN,
    _V + "GetVmTargets": ADMIN,
    _V + "PlanFailover": ADMIN,
    _V + "RemoveVm": ADMIN,
    _A + "AdmitHosts": ADMIN,
    _A + "RevokeHosts": ADMIN,
    _A + "ListAdmissions": ADMIN,
    _B + "PinBaseline": ADMIN,
    _B + "UnpinBaseline": ADMIN,
    _B + "GetPinnedBaseline": ADMIN,
}


def governed(method: str) -> bool:
    """Whether ``method`` (``/package.Service/Method``) belongs to one of SERVICES."""
    return method.lstrip("/").rsplit("/", 1)[0] in SERVICES
