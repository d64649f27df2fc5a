"""TLS material for gRPC servers and channels, shared by the daemons and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from .errors import InputError


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for one side of a connection."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.ca)

    def read(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        def load(path: str | None) -> bytes | None:
            if not path:
                return None
            try:
                with open(path, "rb") as fh:
                    return fh.read()
            except OSError as exc:
                raise InputError(f"cannot read TLS file {path}: {exc.strerror}") from None

        return load(self.cert), load(self.key), load(self.ca)


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    cert, key, ca = tls.read()
    if not cert or not key:
        raise InputError("TLS needs both --tls-cert and --tls-key")
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def channel_credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    cert, key, ca = tls.read()
    if (cert is None) != (key is None):
        raise InputError("a client certificate needs both --tls-cert and --tls-key")
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def serves_tls(tls: TlsFiles) -> bool:
    """A server speaks TLS only with its own certificate and key; a CA alone changes nothing."""
    return bool(tls.cert and tls.key)


def check_listen_address(listen: str, tls: TlsFiles, insecure: bool) -> None:
    """Without a server certificate, refuse anything but loopback unless --insecure was given.

    Loopback is judged by the resolved address, never by how the name is spelt.
    """
    from .addresses import is_loopback, listen_address, split_host_port

    listen_address(listen)
    if serves_tls(tls) or insecure or listen.startswith("unix:"):
        return
    host, _ = split_host_port(listen)
    if not is_loopback(host):
        raise InputError(
            f"refusing to serve plaintext on {listen}: {host or 'every interface'} is not a "
            "loopback address; give --tls-cert and --tls-key (and --tls-ca for mutual TLS), "
            "listen on 127.0.0.1, or pass --insecure"
        )
