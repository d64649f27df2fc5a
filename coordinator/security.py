"""Who may do what on the coordinator.

Under mutual TLS every caller presents a certificate from the cluster CA:
an agent may report only for the host named in its certificate (CN or a
DNS SAN), and queries and administrative calls need a certificate whose
name is on the administrator list (`--admin NAME`). Without client
certificates the coordinator listens on loopback only (unless --insecure),
and everyone on that socket is trusted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from cpucompat.agent.errors import PermissionDeniedError, UnauthenticatedError


@dataclass(frozen=True)
class Identity:
    """The names a caller's verified client certificate carries (empty without mTLS)."""

    names: frozenset[str]
    authenticated: bool

    def label(self) -> str:
        return ", ".join(sorted(self.names)) or "no certificate"


def identity_of(context: grpc.ServicerContext) -> Identity:
    auth = context.auth_context()
    names = set()
    # Only the CN and DNS SANs name a host or an administrator: gRPC's
    # x509_subject_alternative_name also lists email, URI and IP SANs.
    for key in ("x509_common_name", "peer_dns"):
        for value in auth.get(key, []):
            names.add(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return Identity(frozenset(names), bool(names))


class NotAuthorizedError(PermissionDeniedError):
    """The caller's certificate does not name the host or an administrator."""


class NoCertificateError(UnauthenticatedError):
    """Mutual TLS is on and the caller presented no certificate."""


class Authorizer:
    """Checks a caller's identity against the coordinator's security mode.

    The access interceptor calls these with the rule the access table declares for
    the method (service/access.py); no servicer calls them itself.
    """

    def __init__(self, mutual_tls: bool, admins: Iterable[str] = ()) -> None:
        self.mutual_tls = mutual_tls
        self.admins = frozenset(admins)

    def require_host(self, who: Identity, host_id: str) -> None:
        """A report or heartbeat for ``host_id`` must come from that host's certificate."""
        if self.mutual_tls and host_id not in who.names:
            raise NotAuthorizedError(
                f"certificate ({who.label()}) may not report for host {host_id!r}: "
                "its CN or a DNS SAN must equal the host id"
            )

    def require_member(self, who: Identity) -> None:
        """Any certificate the cluster CA signed (agents watching policy)."""
        if self.mutual_tls and not who.authenticated:
            raise NoCertificateError("a client certificate is required")

    def require_admin(self, who: Identity) -> None:
        if self.mutual_tls and not who.names & self.admins:
            raise NotAuthorizedError(
                f"certificate ({who.label()}) is not an administrator; start the coordinator "
                "with --admin NAME for a certificate name allowed to query and administer"
            )
